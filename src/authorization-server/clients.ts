import type { AuthorizationServerConfig } from '../config/types.js';
import type { KeyValueStore } from '../store/types.js';
import { OAuthError } from './errors.js';
import type { MetadataDocuments } from './cimd.js';
import type { ClientRecord } from './client-record.js';
import { KEYS, readRecord, writeRecord } from './records.js';

/** A client_id that is a URL names a Client ID Metadata Document (draft §3); nothing else does. */
function isMetadataDocumentId(clientId: string): boolean {
  return /^https?:\/\//i.test(clientId);
}

/**
 * Finds a client: configured (authorizationServer.clients), dynamically registered (the store,
 * shared by replicas; every use restarts its lifetime), or described by a metadata document at
 * the URL that is its id. An unknown client is invalid_client (RFC 6749 §4.1.2.1: shown on a
 * page, never redirected, since its redirect URIs are unknown).
 */
export class Clients {
  private readonly configured: ReadonlyMap<string, ClientRecord>;

  constructor(
    private readonly config: AuthorizationServerConfig,
    private readonly store: KeyValueStore,
    private readonly metadataDocuments: MetadataDocuments | undefined,
  ) {
    this.configured = new Map(
      config.clients.map((c) => [
        c.clientId,
        {
          clientId: c.clientId,
          ...(c.clientName !== undefined ? { clientName: c.clientName } : {}),
          redirectUris: c.redirectUris,
          grantTypes: ['authorization_code', 'refresh_token'],
          // Configured clients may use private-use schemes (checked at load as native).
          applicationType: 'native',
          registeredBy: 'config',
        } satisfies ClientRecord,
      ]),
    );
  }

  async find(clientId: string | undefined): Promise<ClientRecord> {
    if (clientId === undefined || clientId === '') throw new OAuthError('invalid_request', 'client_id is required');
    const configured = this.configured.get(clientId);
    if (configured) return configured;
    if (isMetadataDocumentId(clientId)) {
      if (!this.metadataDocuments) throw new OAuthError('invalid_client', 'this authorization server does not accept Client ID Metadata Documents');
      return this.metadataDocuments.client(clientId);
    }
    // Only ids the registration endpoint could have made reach the store.
    const registered = /^[A-Za-z0-9_-]{1,64}$/.test(clientId)
      ? await readRecord<ClientRecord>(this.store, KEYS.client(clientId), this.config.registration.clientTtlMs)
      : undefined;
    if (registered && this.config.registration.dynamic) return registered;
    throw new OAuthError('invalid_client', `unknown client '${clientId.slice(0, 100)}'`);
  }

  async register(client: ClientRecord): Promise<void> {
    await writeRecord(this.store, KEYS.client(client.clientId), client, this.config.registration.clientTtlMs);
  }
}
