import { Refusal } from '../errors.js';

// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * The access token from the Authorization header. Only the header is accepted
 * (MCP authorization §Token Requirements: tokens MUST NOT be in the URI query string), so a
 * request carrying `?access_token=` is treated exactly as one with no token.
 */
export function extractBearerToken(authorization: string | undefined): string {
  if (authorization === undefined || authorization.trim() === '') {
    throw new Refusal('missing_token', 'Authorization needed');
  }
  // RFC 6750 §3.1: a request with another authentication scheme gets the plain challenge, with
  // no error code, exactly as one that carried no credentials.
  if (!/^bearer(\s|$)/i.test(authorization)) throw new Refusal('missing_token', 'Authorization needed');
  const match = BEARER.exec(authorization);
  if (!match) throw new Refusal('invalid_token', 'The Bearer token is malformed', { tokenFailure: 'malformed' });
  return match[1]!;
}

export interface Credentials {
  readonly scheme: 'bearer' | 'dpop';
  readonly token: string;
}

// RFC 9449 §7.1: credentials = "DPoP" 1*SP token68
const DPOP = /^DPoP +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The access token and how it was presented: `Bearer` (RFC 6750) or `DPoP` (RFC 9449 §7.1). */
export function extractCredentials(authorization: string | undefined): Credentials {
  if (authorization !== undefined && /^dpop(\s|$)/i.test(authorization)) {
    const match = DPOP.exec(authorization);
    if (!match) throw new Refusal('invalid_token', 'The DPoP token is malformed', { tokenFailure: 'malformed' });
    return { scheme: 'dpop', token: match[1]! };
  }
  return { scheme: 'bearer', token: extractBearerToken(authorization) };
}
