import { Refusal } from '../errors.js';

/**
 * DNS-rebinding protection (Streamable HTTP §Security Warning: servers MUST validate Origin).
 * A request without Origin (not from a browser) is fine; one from any other origin is refused.
 */
export function originChecker(publicUrl: string, allowedOrigins: readonly string[]): (origin: string | undefined) => void {
  const allowed = new Set([new URL(publicUrl).origin, ...allowedOrigins]);
  return (origin) => {
    if (origin !== undefined && !allowed.has(origin)) throw new Refusal('origin_not_allowed', 'Origin not allowed');
  };
}
