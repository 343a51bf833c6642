import { redirectUriProblem, type ApplicationType } from '../config/redirect-uris.js';
import { isLoopbackHost } from '../config/urls.js';
import type { KeyValueStore } from '../store/types.js';
import type { ClientRecord, GrantType } from './client-record.js';
import { OAuthError } from './errors.js';
import { FetchRefused, guardedGet, type GuardedFetchOptions } from './guarded-fetch.js';
import { KEYS, readRecord, writeRecord } from './records.js';
import { digest } from './secrets.js';

/** Draft §6.6: documents are small; 5 KiB is the size the draft suggests servers allow. */
const MAX_DOCUMENT_BYTES = 5 * 1024;
const FETCH_TIMEOUT_MS = 5_000;
/** Cached this long when the document's response says nothing; at most the longer bound. */
const DEFAULT_CACHE_MS = 5 * 60_000;
const MAX_CACHE_MS = 24 * 3_600_000;

/**
 * Why a client_id cannot name a metadata document (draft-ietf-oauth-client-id-metadata-document
 * §3): https, a path, no dot segments, fragment, userinfo or query, in canonical form (the
 * document must repeat it character for character). Plain http only on loopback, and only when
 * private networks are allowed (development).
 */
export function metadataDocumentUrlProblem(clientId: string, allowPrivateNetworks: boolean): string | undefined {
  if (!URL.canParse(clientId)) return 'is not a URL';
  const url = new URL(clientId);
  const plainLoopback = url.protocol === 'http:' && allowPrivateNetworks && isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !plainLoopback) return 'must be an https URL';
  if (url.username !== '' || url.password !== '') return 'must not carry userinfo';
  if (url.search !== '' || clientId.includes('?')) return 'must not have a query';
  if (url.hash !== '' || clientId.includes('#')) return 'must not have a fragment';
  if (url.pathname === '/' || url.pathname === '') return 'must have a path';
  if (/\/\.\.?(\/|$)/.test(clientId.slice(url.origin.length))) return 'must not have . or .. path segments';
  if (url.href !== clientId) return `is not in canonical form (${url.href})`;
  return undefined;
}

/** A fetched document, checked (draft §4.1): the client it describes, or why it does not. */
export function clientFromDocument(clientId: string, body: string): ClientRecord | string {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return 'is not JSON';
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'is not a JSON object';
  if (doc.client_id !== clientId) return 'names another client_id than the URL it was fetched from';
  // Draft §4.1: a document is public; it cannot carry a shared secret.
  if ('client_secret' in doc || 'client_secret_expires_at' in doc) return 'must not contain a client secret';
  const method = doc.token_endpoint_auth_method ?? 'none';
  if (method !== 'none') return `uses token_endpoint_auth_method '${String(method)}': only public clients (none) are supported`;
  const applicationType: ApplicationType = doc.application_type === 'native' ? 'native' : 'web';
  const uris = doc.redirect_uris;
  if (!Array.isArray(uris) || uris.length === 0 || !uris.every((u) => typeof u === 'string')) return 'needs redirect_uris, a list of URIs';
  for (const uri of uris as string[]) {
    const why = redirectUriProblem(uri, applicationType);
    if (why) return `lists the redirect URI '${uri}', which ${why}`;
  }
  const grantTypes = Array.isArray(doc.grant_types) ? doc.grant_types : ['authorization_code'];
  if (!grantTypes.includes('authorization_code')) return 'does not use the authorization_code grant';
  const responseTypes = Array.isArray(doc.response_types) ? doc.response_types : ['code'];
  if (!responseTypes.includes('code')) return 'does not use response type code';
  const name = typeof doc.client_name === 'string' && doc.client_name.trim() !== '' ? doc.client_name.slice(0, 200) : undefined;
  return {
    clientId,
    ...(name !== undefined ? { clientName: name } : {}),
    redirectUris: uris as string[],
    grantTypes: grantTypes.filter((g): g is GrantType => g === 'authorization_code' || g === 'refresh_token'),
    applicationType,
    registeredBy: 'metadata-document',
  };
}

/** RFC 9111 §5.2.2: how long a response may be reused: no-store/no-cache never, max-age bounded. */
export function cacheLifetimeMs(cacheControl: string | undefined): number {
  if (cacheControl === undefined) return DEFAULT_CACHE_MS;
  const directives = cacheControl.toLowerCase().split(',').map((d) => d.trim());
  if (directives.some((d) => d === 'no-store' || d === 'no-cache')) return 0;
  const maxAge = directives.map((d) => /^max-age=(\d+)$/.exec(d)).find(Boolean);
  return maxAge ? Math.min(Number(maxAge[1]) * 1000, MAX_CACHE_MS) : DEFAULT_CACHE_MS;
}

/**
 * Clients whose id is the URL of their metadata document (MCP authorization 2025-11-25 §Client ID
 * Metadata Documents; the preferred registration from 2026-07-28): fetched (SSRF-guarded),
 * checked, cached in the store for every replica.
 */
export class MetadataDocuments {
  constructor(
    private readonly store: KeyValueStore,
    private readonly fetchOptions: Omit<GuardedFetchOptions, 'timeoutMs' | 'maxBytes'>,
  ) {}

  async client(clientId: string): Promise<ClientRecord> {
    const refuse = (why: string) => new OAuthError('invalid_client', `the client's metadata document ${clientId.slice(0, 200)} ${why}`);
    const urlProblem = metadataDocumentUrlProblem(clientId, this.fetchOptions.allowPrivateNetworks);
    if (urlProblem) throw refuse(urlProblem);
    const key = KEYS.metadataDocument(digest(clientId));
    const cached = await readRecord<ClientRecord>(this.store, key);
    if (cached) return cached;
    let fetched;
    try {
      fetched = await guardedGet(new URL(clientId), { ...this.fetchOptions, timeoutMs: FETCH_TIMEOUT_MS, maxBytes: MAX_DOCUMENT_BYTES });
    } catch (error) {
      throw refuse(`could not be fetched: ${error instanceof FetchRefused ? error.message : 'network error'}`);
    }
    if (fetched.status !== 200) throw refuse(`answered HTTP ${fetched.status}`);
    const client = clientFromDocument(clientId, fetched.body);
    if (typeof client === 'string') throw refuse(client);
    const lifetime = cacheLifetimeMs(fetched.headers['cache-control']);
    if (lifetime > 0) await writeRecord(this.store, key, client, lifetime);
    return client;
  }
}
