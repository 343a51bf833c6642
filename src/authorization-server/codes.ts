import type { KeyValueStore } from '../store/types.js';
import type { TokenClaimValue } from './tokens.js';
import { OAuthError } from './errors.js';
import { KEYS, readRecord, writeRecord } from './records.js';
import { digest, randomHandle } from './secrets.js';

/** What an authorization code stands for, bound to everything the token request must repeat. */
export interface CodeGrant {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly resource: string;
  readonly scopes: readonly string[];
  /** The gateway's subject for the user (`<namespace>|<IdP subject>`). */
  readonly subject: string;
  readonly authTime: number;
  /** IdP claims the access tokens carry (authorizationServer.tokens.claims). */
  readonly claims?: Readonly<Record<string, TokenClaimValue>>;
}

/** OAuth 2.1 §4.1.2: short-lived; a minute covers a client's redirect and token request. */
export const CODE_TTL_MS = 60_000;
/** A redeemed code's mark outlives the code, so a late replay is still recognised. */
const USED_MARK_TTL_MS = 10 * 60_000;

/**
 * Authorization codes: random, single use across replicas (one `setIfAbsent` decides which
 * redemption is first), stored by digest. A second redemption is refused and revokes the refresh
 * tokens issued from the first (RFC 6749 §4.1.2, RFC 9700 §4.2.4); the access token already
 * issued expires on its own.
 */
export class AuthorizationCodes {
  constructor(private readonly store: KeyValueStore) {}

  async issue(grant: CodeGrant): Promise<string> {
    const code = randomHandle();
    await writeRecord(this.store, KEYS.code(digest(code)), grant, CODE_TTL_MS);
    return code;
  }

  /**
   * The grant of a code redeemed for the first time, and a function that records which refresh
   * family it produced. A replay calls `revokeFamily` with that family and throws invalid_grant.
   */
  async redeem(code: string, revokeFamily: (familyId: string) => Promise<void>): Promise<{ grant: CodeGrant; issued: (familyId: string) => Promise<void> }> {
    const key = digest(code);
    const grant = await readRecord<CodeGrant>(this.store, KEYS.code(key));
    // The code record stays until it expires: a replay must still find what it was.
    const first = grant !== undefined && (await this.store.setIfAbsent(KEYS.codeUsed(key), '', USED_MARK_TTL_MS));
    if (!first) {
      const familyId = await this.store.get(KEYS.codeUsed(key));
      if (familyId) await revokeFamily(familyId);
      throw new OAuthError('invalid_grant', familyId === undefined ? 'the authorization code is unknown or expired' : 'the authorization code was already used: the tokens issued with it are revoked');
    }
    return { grant, issued: (familyId) => this.store.set(KEYS.codeUsed(key), familyId, USED_MARK_TTL_MS) };
  }
}
