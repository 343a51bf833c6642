import { CompactEncrypt, compactDecrypt } from 'jose';
import { digest } from './secrets.js';

/**
 * Tokens an OAuth server gave the gateway for one user: the IdP's at login (idp-tokens.ts), or a
 * connected account's provider's (connections.ts). Never sent to an MCP client.
 */
export interface TokenSet {
  readonly accessToken: string;
  readonly refreshToken?: string;
  readonly idToken?: string;
  /** Seconds since the epoch. */
  readonly expiresAt?: number;
  /** When the gateway received it (seconds since the epoch): with expiresAt, the token's lifetime. */
  readonly issuedAt?: number;
  readonly scope?: string;
}

/** What a token request (a refresh, a code exchange) at an IdP or a provider came to. */
export type TokenOutcome =
  | { readonly kind: 'issued'; readonly tokens: TokenSet }
  /** The server refused the grant (RFC 6749 §5.2 invalid_grant: expired or revoked): the user must act again. */
  | { readonly kind: 'refused'; readonly error: string }
  /** Unreachable, slow, failing, or refusing the gateway's own client (a configuration matter). */
  | { readonly kind: 'unavailable'; readonly why: string };

/**
 * One user's token sets of one kind in the store, as the upstream credential modes use them
 * (src/upstream-auth/user-tokens.ts): read, replaced after a refresh, forgotten, and a claim that
 * lets one replica refresh while the others wait for what it writes back (an IdP that rotates
 * refresh tokens would refuse the second use of the same one).
 */
export interface UserTokenStore {
  read(subject: string): Promise<TokenSet | undefined>;
  write(subject: string, tokens: TokenSet): Promise<void>;
  clear(subject: string): Promise<void>;
  /** True for the one caller (across replicas) that may refresh now; lapses after `ttlMs`. */
  claimRefresh(subject: string, ttlMs: number): Promise<boolean>;
  releaseRefresh(subject: string): Promise<void>;
}

/**
 * Seals a token set for one user as a compact JWE, `dir` + `A256GCM` (RFC 7516, RFC 7518 §4.5,
 * §5.3), with the operator's key. The protected header (authenticated, not secret) names the
 * kind of set, the user (a digest) and, for a connection, which one: a sealed set copied under
 * another user's, kind's or connection's key does not open there.
 */
export function sealTokens(key: Uint8Array, label: SealLabel, tokens: TokenSet): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(tokens)))
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', typ: label.kind, sub: digest(label.subject), ...(label.connection !== undefined ? { cnx: label.connection } : {}) })
    .encrypt(key);
}

export interface SealLabel {
  readonly kind: 'idp-tokens' | 'connection';
  readonly subject: string;
  readonly connection?: string;
}

/** Opens what sealTokens made for exactly this label; throws otherwise. */
export async function openTokens(key: Uint8Array, label: SealLabel, sealed: string): Promise<TokenSet> {
  const { plaintext, protectedHeader } = await compactDecrypt(sealed, key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
  // IdP sets sealed before the header named a kind have none; a connection's always does.
  const kind = protectedHeader.typ ?? 'idp-tokens';
  if (kind !== label.kind || protectedHeader.sub !== digest(label.subject) || protectedHeader.cnx !== label.connection) {
    throw new Error('sealed tokens belong to another user, kind or connection');
  }
  const tokens = JSON.parse(new TextDecoder().decode(plaintext)) as TokenSet;
  if (typeof tokens.accessToken !== 'string') throw new Error('sealed tokens without an access token');
  return tokens;
}
