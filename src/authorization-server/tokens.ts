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
  /** IdP claims carried for policy conditions (authorizationServer.tokens.claims). */
  readonly claims?: Readonly<Record<string, TokenClaimValue>>;
}

/** What an IdP claim may be in the gateway's tokens: plain values, or a list of them. */
export type TokenClaimValue = string | number | boolean | readonly (string | number | boolean)[];

/** A list claim keeps at most this many values, a string at most this many characters: a token stays small. */
const MAX_CLAIM_VALUES = 100;
const MAX_CLAIM_CHARS = 256;

/**
 * The named IdP claims, as the gateway's tokens carry them: plain values and lists of them only
 * (an object could smuggle anything), strings and lists bounded, anything else left out.
 */
export function carriedClaims(source: Readonly<Record<string, unknown>>, names: readonly string[]): Record<string, TokenClaimValue> {
  const carried: Record<string, TokenClaimValue> = {};
  for (const name of names) {
    if (!Object.hasOwn(source, name)) continue;
    const value = plain(source[name]);
    if (value !== undefined) carried[name] = value;
    else if (Array.isArray(source[name])) {
      const values = (source[name] as unknown[]).slice(0, MAX_CLAIM_VALUES).map(plain).filter((v): v is string | number | boolean => v !== undefined && !Array.isArray(v));
      carried[name] = values;
    }
  }
  return carried;
}

function plain(value: unknown): string | number | boolean | undefined {
  if (typeof value === 'string') return value.length <= MAX_CLAIM_CHARS ? value : undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'boolean') return value;
  return undefined;
}

/**
 * The claims of an RFC 9068 access token (§2.2: iss, exp, aud, sub, client_id, iat, jti; scope
 * §2.2.3), for `ttlMs` from `nowMs`. Pure, so tests read exactly what is signed.
 */
export function accessTokenClaims(grant: AccessTokenGrant, ttlMs: number, nowMs: number, jti: string): Record<string, unknown> {
  const iat = Math.floor(nowMs / 1000);
  return {
    // First, so that no IdP claim can stand for one the gateway sets (config refuses those names too).
    ...grant.claims,
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
