import type { KeyValueStore } from '../store/types.js';
import { OAuthError } from './errors.js';
import { KEYS, readRecord, writeRecord } from './records.js';
import { digest, randomHandle } from './secrets.js';
import { openTokens, sealTokens, type TokenSet, type UserTokenStore } from './token-sets.js';

/**
 * A user asked (by an MCP request that found no connection) to connect an account: whose
 * request it was, for which connection. Kept under the digest of a one-time nonce that only the
 * elicitation URL carries (MCP elicitation §Safe URL Handling: no user data in the URL); the page
 * binds the result to this subject only after the person at the browser logged in as it.
 */
export interface ConnectRequest {
  /** The gateway's subject of the principal that was asked. */
  readonly subject: string;
  /** The MCP client that asked (elicitation §Security Considerations: bound to client and user). */
  readonly clientId?: string;
  readonly connection: string;
  readonly route: string;
  readonly elicitationId: string;
}

/** Ten minutes to open the link, sign in and connect (RFC 6749 §10.12 asks that such state not live long). */
const CONNECT_REQUEST_TTL_MS = 10 * 60_000;
/** A connection is kept this long after it was made or last refreshed. */
const CONNECTION_TTL_MS = 90 * 24 * 3_600_000;

/**
 * Connected accounts in the store: the connect requests elicitation URLs name, and each user's
 * sealed tokens per connection (token-sets.ts: the operator's key, the user and the connection
 * in the authenticated header), shared by replicas.
 */
export class ConnectedAccounts {
  private readonly key: Uint8Array;
  /** Told when a user disconnects, so what this process holds in memory goes at once. */
  private readonly disconnectListeners = new Set<(connection: string, subject: string) => void>();

  constructor(
    private readonly store: KeyValueStore,
    keyBase64url: string,
  ) {
    this.key = Buffer.from(keyBase64url, 'base64url');
  }

  /** A new connect request; returns its nonce (256 random bits), the one thing the URL carries. */
  async request(request: ConnectRequest): Promise<string> {
    const nonce = randomHandle();
    await writeRecord(this.store, KEYS.connectRequest(digest(nonce)), request, CONNECT_REQUEST_TTL_MS);
    return nonce;
  }

  async findRequest(nonce: string | undefined): Promise<ConnectRequest> {
    const found = nonce === undefined || nonce === '' ? undefined : await readRecord<ConnectRequest>(this.store, KEYS.connectRequest(digest(nonce)));
    if (!found) throw new OAuthError('invalid_request', 'this link is unknown, already used or expired: retry in your application to get a new one');
    return found;
  }

  /** Whether the request is still open (not used, refused or expired). */
  async isOpen(nonce: string): Promise<boolean> {
    return (await this.store.get(KEYS.connectRequest(digest(nonce)))) !== undefined;
  }

  /** The user removed the connection (the connections page): forgotten here and in every listener's memory. */
  async disconnect(connection: string, subject: string): Promise<void> {
    await this.slot(connection).clear(subject);
    for (const listener of this.disconnectListeners) listener(connection, subject);
  }

  onDisconnect(listener: (connection: string, subject: string) => void): void {
    this.disconnectListeners.add(listener);
  }

  /** Used (or refused): the link opens nothing any more. */
  async finishRequest(nonce: string): Promise<void> {
    await this.store.delete(KEYS.connectRequest(digest(nonce)));
  }

  /** Whether the user has this connection, without opening it. */
  async has(connection: string, subject: string): Promise<boolean> {
    return (await this.store.get(KEYS.connection(connection, digest(subject)))) !== undefined;
  }

  /** One connection's tokens, for every user, as the upstream credential needs them. */
  slot(connection: string): UserTokenStore {
    const { store, key } = this;
    const label = (subject: string) => ({ kind: 'connection' as const, subject, connection });
    return {
      async read(subject) {
        const sealed = await store.get(KEYS.connection(connection, digest(subject)));
        // Sealed under another key (rotated): as good as absent, the user connects again.
        return sealed === undefined ? undefined : openTokens(key, label(subject), sealed).catch(() => undefined);
      },
      async write(subject, tokens: TokenSet) {
        await store.set(KEYS.connection(connection, digest(subject)), await sealTokens(key, label(subject), tokens), CONNECTION_TTL_MS);
      },
      async clear(subject) {
        await store.delete(KEYS.connection(connection, digest(subject)));
      },
      claimRefresh: (subject, ttlMs) => store.setIfAbsent(KEYS.connectionRefresh(connection, digest(subject)), '1', ttlMs),
      async releaseRefresh(subject) {
        await store.delete(KEYS.connectionRefresh(connection, digest(subject)));
      },
    };
  }
}
