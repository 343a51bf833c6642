import type { IncomingMessage } from 'node:http';
import { forgetAdmission } from './connection-admission.js';

/** Request headers that carry credentials: needed to authenticate, never after. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'dpop', 'cookie']);

/**
 * Drops the client's credentials from a request that has been authenticated and forwarded: a
 * long-lived stream would otherwise hold its bearer token in memory for hours (and a gateway
 * holding thousands of streams, thousands of tokens, in any heap dump), and each costs about
 * 1 KB per stream. The connection forgets the token it was last admitted with, too.
 */
export function forgetCredentials(req: IncomingMessage): void {
  forgetAdmission(req.socket);
  for (const name of CREDENTIAL_HEADERS) delete req.headers[name];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (CREDENTIAL_HEADERS.has(raw[i]!.toLowerCase())) raw[i + 1] = '';
}
