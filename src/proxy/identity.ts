import { calculateJwkThumbprint, exportJWK, generateKeyPair, importPKCS8, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { Principal } from '../auth/principal.js';
import { BoundedMap } from '../cache/bounded-map.js';
import type { IdentityHeaders, IdentityTokenConfig } from '../config/types.js';

/** Where upstreams find the key that signs identity tokens (RFC 7517 JWK Set). */
export const IDENTITY_JWKS_PATH = '/.well-known/mcp-auth-gateway/jwks.json';

/** A signed token is reused while it has at least this share of its lifetime left. */
const REUSE_FRACTION = 0.5;
const MAX_CACHED = 10_000;
/** The cached keys' and tokens' lengths in all: a principal's claims size each entry, not only the count. */
const MAX_CACHED_CHARS = 16 * 1024 * 1024;

/**
 * Signs short-lived identity tokens for upstreams that want to verify who is calling rather than
 * trust plain headers: `iss` the gateway, `aud` the upstream's origin, `sub`, `client_id`,
 * `scope`, the token's own issuer as `token_iss`, never the client's token itself (MCP
 * authorization §Access Token Privilege Restriction). Tokens are reused for half their lifetime
 * per (route, principal), so signing is not paid on every request.
 */
export class IdentitySigner {
  /** By (upstream origin, principal), in order of signing: the least recently signed goes first. */
  private readonly cache = new BoundedMap<string, SignedToken>({
    maxEntries: MAX_CACHED,
    maxWeight: MAX_CACHED_CHARS,
    maxEntryWeight: MAX_CACHED_CHARS / 64,
    weigh: (cacheKey, signed) => cacheKey.length + signed.token.length,
  });

  private constructor(
    private readonly key: CryptoKey,
    readonly publicJwk: JWK,
    private readonly config: IdentityTokenConfig,
    private readonly issuer: string,
  ) {}

  static async create(config: IdentityTokenConfig, issuer: string): Promise<IdentitySigner> {
    let privateKey: CryptoKey;
    let publicJwk: JWK;
    if (config.signingKey !== undefined) {
      privateKey = await importPKCS8(config.signingKey, config.algorithm, { extractable: true });
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = await exportJWK(privateKey);
      publicJwk = pub;
    } else {
      const pair = await generateKeyPair(config.algorithm);
      privateKey = pair.privateKey;
      publicJwk = await exportJWK(pair.publicKey);
    }
    publicJwk = { ...publicJwk, alg: config.algorithm, use: 'sig', kid: await calculateJwkThumbprint(publicJwk) };
    // A key that imports may still be refused when signing (an RSA key under 2048 bits): find
    // out now, at startup, rather than fail every request of every route that sends a token.
    try {
      await new SignJWT({}).setProtectedHeader({ alg: config.algorithm }).sign(privateKey);
    } catch (error) {
      throw new Error(`identityToken: the signing key cannot sign ${config.algorithm} tokens: ${(error as Error).message}`);
    }
    return new IdentitySigner(privateKey, publicJwk, config, issuer);
  }

  get jwks(): { keys: JWK[] } {
    return { keys: [this.publicJwk] };
  }

  async sign(principal: Principal, audience: string, nowMs = Date.now()): Promise<string> {
    const cacheKey = JSON.stringify([audience, principal.issuer, principal.subject, principal.clientId, [...principal.scopes]]);
    const cached = this.cache.get(cacheKey);
    // A token signed for an earlier, longer-lived client token must not outlive this one.
    if (cached && cached.reuseUntilMs > nowMs && cached.expiresAt <= principal.expiresAt) return cached.token;
    const issuedAt = Math.floor(nowMs / 1000);
    const ttlSeconds = Math.max(1, Math.floor(this.config.ttlMs / 1000));
    // Never outlive the client's own token.
    // Never outlive the client's token, and never be born expired (a token admitted within the
    // clock tolerance past its exp gets the shortest lifetime instead).
    const expiresAt = Math.max(issuedAt + 1, Math.min(issuedAt + ttlSeconds, principal.expiresAt));
    const token = await new SignJWT({
      ...(principal.clientId !== undefined ? { client_id: principal.clientId } : {}),
      scope: [...principal.scopes].join(' '),
      token_iss: principal.issuer,
    })
      .setProtectedHeader({ alg: this.config.algorithm, typ: 'JWT', kid: this.publicJwk.kid! })
      .setIssuer(this.issuer)
      .setAudience(audience)
      .setSubject(principal.subject)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(this.key);
    this.cache.set(cacheKey, { token, reuseUntilMs: nowMs + (expiresAt - issuedAt) * 1000 * REUSE_FRACTION, expiresAt });
    return token;
  }
}

interface SignedToken {
  readonly token: string;
  /** Until when it is handed out again (REUSE_FRACTION of its lifetime), in milliseconds. */
  readonly reuseUntilMs: number;
  /** Its exp, in seconds. */
  readonly expiresAt: number;
}

/** The identity headers a route sends upstream for this principal (names lower-case). */
export async function identityHeadersFor(
  names: IdentityHeaders,
  principal: Principal,
  upstream: URL,
  signer: IdentitySigner | undefined,
): Promise<Record<string, string>> {
  const headers: Record<string, string> = {};
  if (names.subject) headers[names.subject] = headerSafe(principal.subject);
  if (names.client && principal.clientId !== undefined) headers[names.client] = headerSafe(principal.clientId);
  if (names.scopes) headers[names.scopes] = headerSafe([...principal.scopes].join(' '));
  if (names.issuer) headers[names.issuer] = headerSafe(principal.issuer);
  if (names.token && signer) headers[names.token] = await signer.sign(principal, upstream.origin);
  return headers;
}

/** Every header name any route sets: client-sent copies are always dropped before forwarding. */
export function identityHeaderNames(names: IdentityHeaders): string[] {
  return Object.values(names).filter((name): name is string => typeof name === 'string');
}

/**
 * Claims are the IdP's strings: anything beyond visible ASCII and space (Unicode, control
 * characters, a CR LF that would split the header) is percent-encoded, never sent raw. So is a
 * value with a `%` (so `decodeURIComponent` always gives the claim back) or with a leading or
 * trailing space (HTTP drops it: `alice ` would arrive as `alice`, someone else). A lone UTF-16
 * surrogate, which has no UTF-8 form, becomes U+FFFD rather than throw.
 */
export function headerSafe(value: string): string {
  if (/^(?:[\x21-\x24\x26-\x7e](?:[\x20-\x24\x26-\x7e]*[\x21-\x24\x26-\x7e])?)?$/.test(value)) return value;
  return encodeURIComponent(value.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));
}
