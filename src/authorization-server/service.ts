import type { AuthorizationServerConfig, ConnectedAccountUpstreamAuth, IssuerConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import type { KeyValueStore } from '../store/types.js';
import { MetadataDocuments } from './cimd.js';
import { Clients } from './clients.js';
import { AuthorizationCodes } from './codes.js';
import { ConnectedProvider } from './connected-provider.js';
import { ConnectedAccounts } from './connections.js';
import { Consents } from './consents.js';
import { cookieNames, type CookieNames } from './cookies.js';
import { IdpTokenVault } from './idp-tokens.js';
import type { SigningKeys } from './keys.js';
import { PendingAuthorizations } from './pending.js';
import { RefreshTokens } from './refresh.js';
import type { UpstreamIdp } from './upstream-idp.js';

/** One MCP route as the authorization server sees it: a resource a token may be issued for. */
export interface ProtectedResource {
  /** RFC 8707 resource indicator: the route's resource URL. */
  readonly resource: string;
  /** Scopes every request on the route needs: what an authorization asks for by default. */
  readonly routeScopes: readonly string[];
  readonly scopesSupported: readonly string[];
}

/** Where the authorization server's endpoints are, under its issuer (RFC 8414 §3.1 for the metadata). */
export interface Endpoints {
  readonly metadataPath: string;
  readonly authorize: string;
  readonly token: string;
  readonly register: string;
  readonly revoke: string;
  readonly jwks: string;
  readonly callback: string;
  readonly consent: string;
  /** Where URL-mode elicitations send users to connect an account (connect.ts). */
  readonly connect: string;
  /** The redirect URI registered at connected accounts' providers. */
  readonly connectCallback: string;
  /** Where users see and remove their connected accounts. */
  readonly connections: string;
}

export function endpointsOf(issuer: string): { urls: Endpoints; paths: Endpoints } {
  const base = new URL(issuer).pathname.replace(/\/$/, '');
  const paths: Endpoints = {
    metadataPath: `/.well-known/oauth-authorization-server${base}`,
    authorize: `${base}/oauth/authorize`,
    token: `${base}/oauth/token`,
    register: `${base}/oauth/register`,
    revoke: `${base}/oauth/revoke`,
    jwks: `${base}/oauth/jwks.json`,
    callback: `${base}/oauth/callback`,
    consent: `${base}/oauth/consent`,
    connect: `${base}/oauth/connect`,
    connectCallback: `${base}/oauth/connect/callback`,
    connections: `${base}/oauth/connections`,
  };
  const origin = new URL(issuer).origin;
  const urls = Object.fromEntries(Object.entries(paths).map(([key, path]) => [key, `${origin}${path}`])) as unknown as Endpoints;
  return { urls, paths };
}

export interface AuthorizationServerParts {
  readonly config: AuthorizationServerConfig;
  readonly issuer: string;
  readonly store: KeyValueStore;
  readonly keys: SigningKeys;
  readonly upstream: UpstreamIdp;
  /** The IdP client's per-request timeout (timeouts.issuerDiscovery). */
  readonly upstreamTimeoutMs: number;
  readonly resources: readonly ProtectedResource[];
  readonly logger: Logger;
  /** Extra CA certificates (PEM) trusted when fetching metadata documents (embedding and tests). */
  readonly metadataDocumentCa?: string;
  /** Routes' connected accounts (routes[].upstreamAuth.connectedAccount): what users may connect here. */
  readonly connectedAccounts?: readonly ConnectedAccountUpstreamAuth[];
  /** Resources of the routes that send the user's own IdP token upstream (routes[].upstreamAuth.idpToken). */
  readonly idpTokenResources?: readonly string[];
}

/**
 * The authorization-server facade for one config: its state stores (all in the shared store,
 * so any replica continues a flow), the upstream IdP client and the signing keys. Built on every
 * config load; what must outlive a reload (a generated key, the IdP's discovered metadata) is
 * handed in by the composition root.
 */
export class AuthorizationServer {
  readonly config: AuthorizationServerConfig;
  readonly issuer: string;
  /** The shared store all of its state lives in. */
  readonly store: KeyValueStore;
  readonly keys: SigningKeys;
  readonly upstream: UpstreamIdp;
  readonly upstreamTimeoutMs: number;
  readonly resources: ReadonlyMap<string, ProtectedResource>;
  readonly logger: Logger;
  readonly endpoints: Endpoints;
  readonly paths: Endpoints;
  readonly clients: Clients;
  readonly codes: AuthorizationCodes;
  readonly refreshTokens: RefreshTokens;
  readonly pending: PendingAuthorizations;
  readonly consents: Consents;
  /** undefined when no tokenEncryptionKeyFile is configured: the IdP's tokens are then not kept. */
  readonly vault: IdpTokenVault | undefined;
  /** Connected accounts' requests and tokens; undefined without tokenEncryptionKeyFile (they are sealed with it). */
  readonly connections: ConnectedAccounts | undefined;
  /** Each connection's provider client, by connection name. */
  readonly providers: ReadonlyMap<string, ConnectedProvider>;
  /** Resources whose tokens are of use only while the user's IdP tokens are kept (upstreamAuth.idpToken). */
  readonly idpTokenResources: ReadonlySet<string>;
  readonly cookies: CookieNames;
  /** Cookies are Secure (and `__Host-`) whenever the issuer is https. */
  readonly secure: boolean;

  constructor(parts: AuthorizationServerParts) {
    const { config, store } = parts;
    this.config = config;
    this.store = store;
    this.issuer = parts.issuer;
    this.keys = parts.keys;
    this.upstream = parts.upstream;
    this.upstreamTimeoutMs = parts.upstreamTimeoutMs;
    this.logger = parts.logger.child({ component: 'authorization-server' });
    this.resources = new Map(parts.resources.map((r) => [r.resource, r]));
    ({ urls: this.endpoints, paths: this.paths } = endpointsOf(parts.issuer));
    const documents = config.registration.metadataDocuments
      ? new MetadataDocuments(store, { allowPrivateNetworks: config.registration.allowPrivateNetworks, ...(parts.metadataDocumentCa ? { ca: parts.metadataDocumentCa } : {}) })
      : undefined;
    this.clients = new Clients(config, store, documents);
    this.codes = new AuthorizationCodes(store);
    this.refreshTokens = new RefreshTokens(store, config.tokens.refreshTokenTtlMs);
    this.pending = new PendingAuthorizations(store);
    this.consents = new Consents(store, config.consent.rememberForMs);
    const sealingKey = config.upstream.tokenEncryptionKey;
    this.vault = sealingKey !== undefined ? new IdpTokenVault(store, sealingKey, config.tokens.refreshTokenTtlMs) : undefined;
    this.connections = sealingKey !== undefined ? new ConnectedAccounts(store, sealingKey) : undefined;
    this.idpTokenResources = new Set(parts.idpTokenResources ?? []);
    this.providers = new Map((parts.connectedAccounts ?? []).map((account) => [account.connection, new ConnectedProvider(account, this.endpoints.connectCallback, parts.upstreamTimeoutMs)]));
    this.secure = new URL(parts.issuer).protocol === 'https:';
    this.cookies = cookieNames(this.secure);
  }

  /**
   * The gateway's own issuer, trusted without an issuers[] entry: inline public keys (nothing is
   * fetched), RFC 9068 `at+jwt` only, `scope` and `client_id` claims, audience = the route's
   * resource (the default). Policies, step-up, sessions, DPoP and rate limits then see these
   * tokens as any IdP's.
   */
  selfIssuer(): IssuerConfig {
    return {
      issuer: this.issuer,
      preset: 'generic',
      algorithms: ['ES256', 'RS256', 'PS256'],
      // Tokens are made by this gateway's replicas: only their clocks' drift to allow for.
      clockToleranceSeconds: 5,
      typ: ['at+jwt'],
      claims: { scopes: ['scope'], subject: 'sub', client: ['client_id'] },
      requireClaims: {},
      jwks: this.keys.publicJwks,
      dpop: 'allowed',
    };
  }
}
