import type { KeyValueStore } from '../store/types.js';
import { KEYS } from './records.js';
import { digest } from './secrets.js';
import { openTokens, sealTokens, type TokenSet, type UserTokenStore } from './token-sets.js';

/** What the IdP gave the gateway for a user: never sent to an MCP client. */
export type IdpTokenSet = TokenSet;

/**
 * The IdP's tokens, sealed with the operator's key (authorizationServer.upstream
 * .tokenEncryptionKeyFile; token-sets.ts): a copy of the store is not a copy of anyone's IdP
 * tokens. Kept at login for as long as a refresh token family lives, and replaced when the
 * gateway refreshes them for routes with upstreamAuth.idpToken.
 */
export class IdpTokenVault implements UserTokenStore {
  private readonly key: Uint8Array;

  constructor(
    private readonly store: KeyValueStore,
    keyBase64url: string,
    /** How long a user's set is kept after it was written (authorizationServer.tokens.refreshTokenTtl). */
    private readonly ttlMs = 30 * 24 * 3_600_000,
  ) {
    this.key = Buffer.from(keyBase64url, 'base64url');
  }

  seal(subject: string, tokens: IdpTokenSet): Promise<string> {
    return sealTokens(this.key, { kind: 'idp-tokens', subject }, tokens);
  }

  open(subject: string, sealed: string): Promise<IdpTokenSet> {
    return openTokens(this.key, { kind: 'idp-tokens', subject }, sealed);
  }

  async keep(subject: string, sealed: string, ttlMs: number): Promise<void> {
    await this.store.set(KEYS.idpTokens(digest(subject)), sealed, ttlMs);
  }

  /** The user's set; undefined when none is kept, or when it cannot be opened (another key: as good as absent). */
  async read(subject: string): Promise<IdpTokenSet | undefined> {
    const sealed = await this.store.get(KEYS.idpTokens(digest(subject)));
    return sealed === undefined ? undefined : this.open(subject, sealed).catch(() => undefined);
  }

  async write(subject: string, tokens: IdpTokenSet): Promise<void> {
    await this.keep(subject, await this.seal(subject, tokens), this.ttlMs);
  }

  async clear(subject: string): Promise<void> {
    await this.store.delete(KEYS.idpTokens(digest(subject)));
  }

  claimRefresh(subject: string, ttlMs: number): Promise<boolean> {
    return this.store.setIfAbsent(KEYS.idpRefresh(digest(subject)), '1', ttlMs);
  }

  async releaseRefresh(subject: string): Promise<void> {
    await this.store.delete(KEYS.idpRefresh(digest(subject)));
  }
}
