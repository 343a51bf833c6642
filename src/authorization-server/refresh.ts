import { randomBytes } from 'node:crypto';
import type { KeyValueStore } from '../store/types.js';
import type { TokenClaimValue } from './tokens.js';
import { OAuthError } from './errors.js';
import { KEYS, readRecord, writeRecord } from './records.js';
import { digest, randomHandle, sameSecret } from './secrets.js';

/** One authorization's refresh tokens: each use rotates it; only the newest is ever valid. */
export interface RefreshFamily {
  readonly clientId: string;
  readonly subject: string;
  readonly resource: string;
  /** The scopes granted at authorization; a refresh may narrow an access token's, never widen. */
  readonly scopes: readonly string[];
  readonly authTime?: number;
  /** IdP claims as at login: a refresh carries the same (the IdP is not asked again). */
  readonly claims?: Readonly<Record<string, TokenClaimValue>>;
  /** Digest of the one refresh token that may be used next. */
  readonly current: string;
}

/** How long a used token's mark lasts: long enough to settle two concurrent uses of one token. */
const USED_MARK_TTL_MS = 10 * 60_000;

/**
 * Refresh tokens with rotation and reuse detection (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): a
 * token is `<family id>.<secret>`; the store keeps the family and the digest of its current
 * secret. A token of the family that is not the current one, or the current one presented twice
 * (two replicas racing are settled by one `setIfAbsent`), means a copy is in someone else's hands:
 * the whole family is revoked, the legitimate client's newest token with it.
 */
export class RefreshTokens {
  constructor(
    private readonly store: KeyValueStore,
    /** A family unused this long expires; every rotation restarts it. */
    private readonly ttlMs: number,
  ) {}

  async start(family: Omit<RefreshFamily, 'current'>): Promise<{ token: string; familyId: string }> {
    const familyId = randomBytes(18).toString('base64url');
    const secret = randomHandle();
    await writeRecord(this.store, KEYS.family(familyId), { ...family, current: digest(secret) }, this.ttlMs);
    return { token: `${familyId}.${secret}`, familyId };
  }

  /**
   * The family of a presented token and a new token for it; throws invalid_grant (RFC 6749 §5.2).
   * `check` may refuse the request (its scope, its resource) before anything changes.
   */
  async rotate(token: string, clientId: string, check: (family: RefreshFamily) => void = () => {}): Promise<{ family: RefreshFamily; token: string; familyId: string }> {
    const { familyId, secret } = parseToken(token);
    const family = familyId === undefined ? undefined : await readRecord<RefreshFamily>(this.store, KEYS.family(familyId));
    if (family === undefined || secret === undefined) throw new OAuthError('invalid_grant', 'the refresh token is unknown, expired or revoked');
    // RFC 6749 §6: a refresh token is bound to the client it was issued to.
    if (family.clientId !== clientId) throw new OAuthError('invalid_grant', 'the refresh token was issued to another client');
    const used = digest(secret);
    if (!sameSecret(used, family.current)) return this.reused(familyId!);
    check(family);
    if (!(await this.store.setIfAbsent(KEYS.refreshUsed(used), '1', USED_MARK_TTL_MS))) return this.reused(familyId!);
    const next = randomHandle();
    const rotated: RefreshFamily = { ...family, current: digest(next) };
    await writeRecord(this.store, KEYS.family(familyId!), rotated, this.ttlMs);
    // A replica that revoked the family meanwhile (a concurrent reuse) must not see it come back.
    if ((await this.store.get(KEYS.familyRevoked(familyId!))) !== undefined) return this.reused(familyId!);
    return { family: rotated, token: `${familyId}.${next}`, familyId: familyId! };
  }

  private async reused(familyId: string): Promise<never> {
    await this.revokeFamily(familyId);
    throw new OAuthError('invalid_grant', 'the refresh token was already used: every token of this authorization is revoked');
  }

  /** The mark comes first: a rotation finishing elsewhere after the delete sees it and undoes itself. */
  async revokeFamily(familyId: string): Promise<void> {
    await this.store.set(KEYS.familyRevoked(familyId), '1', this.ttlMs);
    await this.store.delete(KEYS.family(familyId));
  }

  /**
   * RFC 7009 §2.1: revokes the family of the client's current refresh token. 'unknown' for
   * anything else (already rotated, expired, not a refresh token): nothing to revoke.
   */
  async revoke(token: string, clientId: string): Promise<'revoked' | 'unknown' | 'other-client'> {
    const { familyId, secret } = parseToken(token);
    const family = familyId === undefined ? undefined : await readRecord<RefreshFamily>(this.store, KEYS.family(familyId));
    if (family === undefined || secret === undefined || !sameSecret(digest(secret), family.current)) return 'unknown';
    if (family.clientId !== clientId) return 'other-client';
    await this.revokeFamily(familyId!);
    return 'revoked';
  }
}

function parseToken(token: string): { familyId?: string; secret?: string } {
  const match = /^([A-Za-z0-9_-]{24})\.([A-Za-z0-9_-]{43})$/.exec(token);
  return match ? { familyId: match[1]!, secret: match[2]! } : {};
}
