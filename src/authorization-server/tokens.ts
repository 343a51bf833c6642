import { SignJWT } from 'jose';
import type { SigningKeys } from './keys.js';
import { randomHandle } from './secrets.js';

/** What an access token says; the scopes are the granted ones only. */
export interface AccessTokenGrant {
  readonly issuer: string;
  /** `<namespace>|<IdP subject>`: one IdP's users never collide with another's. */
  readonly subject: string;
  /** The RFC 8707 resource the client asked for: one route's resource URL. */
  readonly resource: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
  /** When the user logged in at the IdP (seconds). */
  readonly authTime?: number;
}

/**
 * The claims of an RFC 9068 access token (§2.2: iss, exp, aud, sub, client_id, iat, jti; scope
 * §2.2.3), for `ttlMs` from `nowMs`. Pure, so tests read exactly what is signed.
 */
export function accessTokenClaims(grant: AccessTokenGrant, ttlMs: number, nowMs: number, jti: string): Record<string, unknown> {
  const iat = Math.floor(nowMs / 1000);
  return {
    iss: grant.issuer,
    sub: grant.subject,
    aud: grant.resource,
    client_id: grant.clientId,
    scope: grant.scopes.join(' '),
    iat,
    exp: iat + Math.max(1, Math.floor(ttlMs / 1000)),
    jti,
    ...(grant.authTime !== undefined ? { auth_time: grant.authTime } : {}),
  };
}

/** Signs an access token with the current key; `typ: at+jwt` (RFC 9068 §2.1) keeps it from passing for an ID token. */
export async function issueAccessToken(keys: SigningKeys, grant: AccessTokenGrant, ttlMs: number, nowMs = Date.now()): Promise<{ token: string; expiresIn: number }> {
  const claims = accessTokenClaims(grant, ttlMs, nowMs, randomHandle());
  const { kid, alg, key } = keys.current;
  const token = await new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'at+jwt' }).sign(key);
  return { token, expiresIn: (claims.exp as number) - (claims.iat as number) };
}
