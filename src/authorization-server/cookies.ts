import { digest, sameSecret } from './secrets.js';

/**
 * The two cookies of a browser's authorization. On https they carry the `__Host-` prefix
 * (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain, so no sibling host can set or read them);
 * plain http (loopback development) cannot use the prefix, since browsers require Secure for it.
 *
 * - binding: set by the authorization endpoint, checked by the callback and the consent page,
 *   so only the browser that started an authorization can finish it (RFC 6749 §10.12 login CSRF;
 *   an attacker who starts a flow and sends the IdP link to a victim gets nothing).
 *   SameSite=Lax: it must come along on the IdP's top-level redirect back.
 * - csrf: the consent form's double-submit token; SameSite=Strict, it only ever comes back with
 *   the form's own POST. `connections` is the same for the connections page's form.
 */
export interface CookieNames {
  readonly binding: string;
  readonly csrf: string;
  /** The connections page's form token (connections-page.ts), apart from the consent form's. */
  readonly connections: string;
}

export function cookieNames(secure: boolean): CookieNames {
  const prefix = secure ? '__Host-' : '';
  return { binding: `${prefix}mcp-gateway-auth`, csrf: `${prefix}mcp-gateway-consent`, connections: `${prefix}mcp-gateway-connections` };
}

export function setCookie(name: string, value: string, options: { secure: boolean; sameSite: 'Lax' | 'Strict'; maxAgeSeconds: number }): string {
  return `${name}=${value}; Path=/; HttpOnly; SameSite=${options.sameSite}; Max-Age=${options.maxAgeSeconds}${options.secure ? '; Secure' : ''}`;
}

/** A cookie's value from a Cookie header; only values a handle can have (base64url) count. */
export function readCookie(header: string | null | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{20,100}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

/** How long the binding cookie lives: an hour, longer than any login at the IdP takes. */
const BINDING_MAX_AGE_S = 3600;

/** The binding cookie, (re)set on the redirect that sends the browser to the IdP. */
export function bindingCookie(names: CookieNames, value: string, secure: boolean): string {
  return setCookie(names.binding, value, { secure, sameSite: 'Lax', maxAgeSeconds: BINDING_MAX_AGE_S });
}

/** Whether the request comes from the browser a flow was bound to: its binding cookie's digest is the one kept. */
export function fromBoundBrowser(request: Request, names: CookieNames, browser: string): boolean {
  const cookie = readCookie(request.headers.get('cookie'), names.binding);
  return cookie !== undefined && sameSecret(digest(cookie), browser);
}
