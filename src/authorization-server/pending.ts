import type { TokenClaimValue } from './tokens.js';
import type { KeyValueStore } from '../store/types.js';
import { OAuthError } from './errors.js';
import { KEYS, readRecord, writeRecord } from './records.js';
import { digest, randomHandle } from './secrets.js';

/** An authorization request between its arrival and its answer: validated, then the user's login. */
export interface PendingAuthorization {
  readonly clientId: string;
  readonly clientName?: string;
  readonly redirectUri: string;
  /** The client's `state`, returned as it came. */
  readonly state?: string;
  readonly codeChallenge: string;
  readonly resource: string;
  readonly requestedScopes: readonly string[];
  /** Digest of the browser cookie the request came with: only that browser may finish it. */
  readonly browser: string;
  /** PKCE verifier and nonce of the gateway's own request to the IdP. */
  readonly idpCodeVerifier: string;
  readonly idpNonce?: string;
  /** Set by the callback once the user logged in at the IdP. */
  readonly user?: PendingUser;
}

export interface PendingUser {
  /** The gateway's subject: `<namespace>|<IdP subject>`. */
  readonly subject: string;
  /** Something a person recognises (email, name or login), for the consent page. */
  readonly displayName: string;
  readonly scopes: readonly string[];
  /** Of the scopes, those the user has not approved for this client before. */
  readonly newScopes: readonly string[];
  readonly authTime: number;
  /** The IdP claims the access tokens carry (authorizationServer.tokens.claims). */
  readonly claims?: Readonly<Record<string, TokenClaimValue>>;
  /** The IdP's tokens, encrypted (idp-tokens.ts); kept for the user when the client is approved. */
  readonly idpTokens?: string;
  /** Digest of the consent form's CSRF token. */
  readonly csrf: string;
}

/** Ten minutes to log in and decide (RFC 6749 §10.12 asks that such state not live long). */
const PENDING_TTL_MS = 10 * 60_000;

/**
 * Pending authorizations in the store, under the digest of an id that is also the `state` sent
 * to the IdP (RFC 6749 §10.12, 256 random bits). Each step is taken once across replicas: the
 * IdP's callback (`claimCallback`) and the user's decision (`claimDecision`) each win one
 * `setIfAbsent`, so a replayed callback or a second form post finds the step taken.
 */
export class PendingAuthorizations {
  constructor(private readonly store: KeyValueStore) {}

  async create(pending: PendingAuthorization): Promise<string> {
    const id = randomHandle();
    await writeRecord(this.store, KEYS.pending(digest(id)), pending, PENDING_TTL_MS);
    return id;
  }

  async find(id: string | undefined): Promise<PendingAuthorization> {
    const pending = id === undefined || id === '' ? undefined : await readRecord<PendingAuthorization>(this.store, KEYS.pending(digest(id)));
    if (!pending) throw new OAuthError('invalid_request', 'this authorization request is unknown, already finished or expired: start again from your application');
    return pending;
  }

  async update(id: string, pending: PendingAuthorization): Promise<void> {
    await writeRecord(this.store, KEYS.pending(digest(id)), pending, PENDING_TTL_MS);
  }

  async claimCallback(id: string): Promise<boolean> {
    return this.store.setIfAbsent(KEYS.callbackUsed(digest(id)), '1', PENDING_TTL_MS);
  }

  async claimDecision(id: string): Promise<boolean> {
    return this.store.setIfAbsent(KEYS.decided(digest(id)), '1', PENDING_TTL_MS);
  }

  async finish(id: string): Promise<void> {
    await this.store.delete(KEYS.pending(digest(id)));
  }
}
