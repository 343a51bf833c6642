import type { ConnectionOptions } from 'node:tls';
import type { JSONWebKeySet, JWK } from 'jose';
import type { CompiledPolicy } from '../policy/types.js';

/** Asymmetric JWS algorithms only: `none` and HMAC are never accepted for access tokens. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 1_048_576,
  upstreamResponseTimeoutMs: 30_000,
  issuerDiscoveryTimeoutMs: 5_000,
  clockToleranceSeconds: 30,
  sessionIdleTimeoutMs: 24 * 60 * 60 * 1000,
  maxSessionsPerPrincipal: 64,
  logLevel: 'info',
  redisKeyPrefix: 'mcp-auth-gateway:',
  redisCommandTimeoutMs: 500,
  redisConnectTimeoutMs: 2_000,
  onStoreError: 'deny',
  introspectionCacheTtlMs: 5 * 60_000,
  introspectionNegativeCacheTtlMs: 10_000,
  maxHeaderBytes: 16_384,
  maxHeaders: 100,
  maxConnections: 20_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 5_000,
  upstreamConnectTimeoutMs: 5_000,
  drainDelayMs: 0,
  gracePeriodMs: 20_000,
  adminHost: '127.0.0.1',
  identityTokenTtlMs: 60_000,
  accessTokenTtlMs: 10 * 60_000,
  refreshTokenTtlMs: 30 * 24 * 3_600_000,
  registeredClientTtlMs: 30 * 24 * 3_600_000,
  consentTtlMs: 30 * 24 * 3_600_000,
} as const;

/** Where an issuer's tokens carry what the gateway reads: scopes, subject and client. */
export interface ClaimMapping {
  /** Claims whose values are scopes, all merged: a space-separated string or an array of strings. */
  readonly scopes: readonly string[];
  /** When set, only scopes starting with it count, with it stripped (e.g. `api://mcp/`). */
  readonly scopePrefix?: string;
  /** The claim naming the subject (user or workload). */
  readonly subject: string;
  /** Claims naming the OAuth client, first present wins. */
  readonly client: readonly string[];
}

export type ClaimValue = string | number | boolean;
export type RequiredClaimValue = ClaimValue | readonly ClaimValue[];

/** The IdPs whose token shapes a preset describes (src/auth/presets.ts). */
export const PRESET_NAMES = ['generic', 'auth0', 'okta', 'entra', 'keycloak', 'fusionauth', 'wso2', 'google'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** RFC 7662 introspection of an issuer's opaque tokens (issuers[].introspection). */
export interface IntrospectionConfig {
  /** RFC 7662 endpoint; undefined = the issuer metadata's `introspection_endpoint`. */
  readonly endpoint?: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** RFC 6749 §2.3.1 client authentication for the introspection call. */
  readonly authMethod: 'client_secret_basic' | 'client_secret_post';
  /** Active results are cached until the token's exp, at most this long. */
  readonly cacheTtlMs: number;
  /** Inactive results are cached this long, so a flood of bad tokens costs the IdP little. */
  readonly negativeCacheTtlMs: number;
}

/** A Redis store (store.type: redis). */
export interface RedisStoreOptions {
  /** redis:// or rediss:// (TLS) URL of a single server; or `nodes` for a Cluster. */
  readonly url?: string;
  /** Seed nodes of a Redis Cluster; the rest are discovered. */
  readonly nodes?: readonly { readonly host: string; readonly port: number }[];
  readonly keyPrefix: string;
  readonly username?: string;
  readonly password?: string;
  /** TLS settings (CA, client certificate); a rediss:// URL alone turns TLS on with system CAs. */
  readonly tls?: ConnectionOptions;
  /** Longest wait for any one store call: no request ever hangs on the store. */
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** DPoP proof ids one principal may have live at once (recordOnce); default REPLAY_IDS_PER_OWNER. */
  readonly maxReplayEntriesPerOwner?: number;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface IssuerConfig {
  readonly issuer: string;
  readonly preset: PresetName;
  readonly algorithms: readonly AsymmetricAlgorithm[];
  readonly clockToleranceSeconds: number;
  /** Accepted typ header values, normalized (lower-case, no `application/`); `absent` = no typ. */
  readonly typ: readonly string[];
  readonly claims: ClaimMapping;
  /** Claims every token must carry with one of the listed values (preset's merged under the issuer's). */
  readonly requireClaims: Readonly<Record<string, RequiredClaimValue>>;
  /** Accepted `aud` values; undefined = the resource URL of the route the token is used on. */
  readonly audiences?: readonly string[];
  /** Route names that accept this issuer; undefined = every route. */
  readonly routes?: readonly string[];
  /** Overrides the jwks_uri from discovery. */
  readonly jwksUri?: string;
  /** Keys given inline or from a file: nothing is fetched. */
  readonly jwks?: JSONWebKeySet;
  /** RFC 7662 introspection for opaque tokens. */
  readonly introspection?: IntrospectionConfig;
  /** RFC 9449 sender-constrained tokens: see the schema's `dpop`. */
  readonly dpop: 'allowed' | 'required' | 'off';
}

export interface RouteConfig {
  readonly name: string;
  readonly path: string;
  readonly upstream: URL;
  readonly policy: CompiledPolicy;
  /** Extra request headers (lower-case) passed upstream besides the MCP ones. */
  readonly forwardHeaders: readonly string[];
  /** What rate limits do when the store cannot answer; session checks always fail closed. */
  readonly onStoreError: 'deny' | 'allow';
  /** Headers (lower-case) the gateway sets upstream to say who is calling; client copies are dropped. */
  readonly identityHeaders: IdentityHeaders;
  readonly audit: { readonly arguments: boolean; readonly redact: readonly string[] };
  /** error: step-ups answered as a JSON-RPC error (for `clients` only, when given). */
  readonly stepUp: { readonly answer: 'challenge' | 'error'; readonly clients?: readonly string[] };
  /** The credential the gateway sends the upstream (routes[].upstreamAuth); none when undefined. */
  readonly upstreamAuth?: UpstreamAuthConfig;
}

/**
 * How the gateway obtains the credential it sends a route's upstream, one mode per route. A
 * union on `mode`: each mode is one more member, never a new shape.
 */
export type UpstreamAuthConfig = StaticUpstreamAuth | TokenExchangeUpstreamAuth | IdpTokenUpstreamAuth | ConnectedAccountUpstreamAuth;
export type UpstreamAuthMode = UpstreamAuthConfig['mode'];

/** A secret from a file (a mounted Secret), sent in a header; the file is re-read when it changes. */
export interface StaticUpstreamAuth {
  readonly mode: 'static';
  /** Lower-case header name. */
  readonly header: string;
  /** Absolute path of the file holding the secret (one trailing newline ignored). */
  readonly valueFile: string;
  /** Put before the file's value (e.g. `Bearer `). */
  readonly prefix: string;
}

/** How the gateway authenticates to the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2). */
export type TokenEndpointAuth =
  | { readonly method: 'client_secret_basic' | 'client_secret_post'; readonly secret: string }
  | { readonly method: 'private_key_jwt'; readonly privateKey: string; readonly algorithm: AsymmetricAlgorithm; readonly keyId?: string };

/** RFC 8693 token exchange (or Entra's on-behalf-of grant): the client's token traded for the upstream's. */
export interface TokenExchangeUpstreamAuth {
  readonly mode: 'tokenExchange';
  /** rfc8693: the token-exchange grant; entra-obo: the jwt-bearer grant with requested_token_use=on_behalf_of. */
  readonly preset: 'rfc8693' | 'entra-obo';
  /** The issuer whose tokens are exchanged: a token from any other issuer is never sent. */
  readonly issuer: string;
  /** Undefined: the issuer metadata's token_endpoint. */
  readonly tokenEndpoint?: string;
  readonly clientId: string;
  readonly clientAuth: TokenEndpointAuth;
  readonly audience?: string;
  readonly resource?: string;
  readonly scopes: readonly string[];
  /** 32 bytes, base64url: exchanged tokens are kept in the store encrypted with it; undefined: in this process only. */
  readonly cacheKey?: string;
  /** The secret files read for this section (absolute), so a reload follows their changes. */
  readonly files: readonly string[];
}

/**
 * The access token the user's own login at the authorization-server facade's IdP produced (kept
 * sealed by the facade), refreshed with the IdP's refresh token; sent as `Authorization: Bearer`.
 */
export interface IdpTokenUpstreamAuth {
  readonly mode: 'idpToken';
}

/** The third-party services a connected account has a preset for (src/config/connected-account-presets.ts). */
export const CONNECTED_ACCOUNT_PRESETS = ['generic', 'github', 'atlassian'] as const;
export type ConnectedAccountPreset = (typeof CONNECTED_ACCOUNT_PRESETS)[number];

/**
 * A per-user OAuth 2.0 connection to a third-party service, made by the user on a gateway page
 * (the provider's authorization code flow) and held by the gateway, sealed in the store.
 */
export interface ConnectedAccountUpstreamAuth {
  readonly mode: 'connectedAccount';
  readonly preset: ConnectedAccountPreset;
  /** What pages and the elicitation message call the service (`GitHub`). */
  readonly name: string;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
  readonly clientId: string;
  readonly clientAuth: { readonly method: 'client_secret_basic' | 'client_secret_post'; readonly secret: string };
  readonly scopes: readonly string[];
  /** Added to the authorization request (Atlassian's `audience` and `prompt`). */
  readonly authorizationParameters: Readonly<Record<string, string>>;
  /** Lower-case header the token goes in, after `prefix`. */
  readonly header: string;
  readonly prefix: string;
  /**
   * Names the connection in the store: routes with the same provider, client and scopes share
   * one connection per user (a digest; a route rename keeps it).
   */
  readonly connection: string;
  /** The secret file read for this section (absolute), so a reload follows its changes. */
  readonly files: readonly string[];
}

export interface IdentityHeaders {
  readonly subject?: string;
  readonly client?: string;
  readonly scopes?: string;
  readonly issuer?: string;
  /** A short-lived JWT signed with identityToken's key. */
  readonly token?: string;
}

/** How the listeners behave: limits, timeouts, TLS, proxies, the admin listener, shutdown. */
export interface ServerConfig {
  /** PEM contents, read at load time. */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly admin?: { readonly host: string; readonly port: number };
  /** IP addresses or CIDR ranges whose X-Forwarded-* headers are believed. */
  readonly trustedProxies: readonly string[];
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
  readonly maxConnections: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
  readonly drainDelayMs: number;
  readonly gracePeriodMs: number;
}

export interface IdentityTokenConfig {
  /** PKCS#8 PEM; undefined = a key generated at startup. */
  readonly signingKey?: string;
  readonly algorithm: 'ES256' | 'RS256';
  readonly ttlMs: number;
}

/** `redis`: replicas share it; the options are read and checked by the loader (secrets included). */
export type StoreConfig = { readonly type: 'memory' } | ({ readonly type: 'redis' } & RedisStoreOptions);

/** Opt-in for 2025-03-26 clients that look for the AS metadata on the gateway's own origin. */
export interface AuthorizationServerMetadataCompat {
  readonly mode: 'redirect' | 'serve';
  /** A configured issuer whose metadata is offered. */
  readonly issuer: string;
}

/** The IdPs the authorization-server facade can send users to (src/config/upstream-presets.ts). */
export const UPSTREAM_PRESETS = ['generic', 'entra', 'google', 'github', 'okta', 'auth0', 'keycloak', 'cognito'] as const;
export type UpstreamPreset = (typeof UPSTREAM_PRESETS)[number];

/** Where users log in when the gateway is the authorization server (authorizationServer.upstream). */
export interface UpstreamIdpConfig {
  readonly preset: UpstreamPreset;
  /** OIDC / RFC 8414 discovery; undefined = plain OAuth 2.0 with the three endpoints below. */
  readonly issuer?: string;
  readonly authorizationEndpoint?: string;
  readonly tokenEndpoint?: string;
  /** Where the user's claims are read (OIDC userinfo, or GitHub's user API). */
  readonly userinfoEndpoint?: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scopes: readonly string[];
  /** Auth0's `audience` authorization parameter. */
  readonly audience?: string;
  /** The claim naming the user at the IdP (entra: `oid`, github: `id`). */
  readonly subjectClaim: string;
  /** 32 bytes, base64url: the IdP's tokens are kept encrypted with it; undefined = not kept. */
  readonly tokenEncryptionKey?: string;
}

/** Who may be granted some scopes: everyone who logs in, or those whose IdP claims match `when`. */
export interface ScopeGrant {
  readonly scopes: readonly string[];
  readonly when?: {
    readonly claims?: Readonly<Record<string, ClaimValue | readonly ClaimValue[]>>;
    readonly subjects?: readonly string[];
  };
}

/** A public client written in the config (authorizationServer.clients). */
export interface PreRegisteredClient {
  readonly clientId: string;
  readonly clientName?: string;
  readonly redirectUris: readonly string[];
}

/** The optional OAuth 2.1 authorization-server facade (issue 25). */
export interface AuthorizationServerConfig {
  /** undefined = publicUrl. */
  readonly issuer?: string;
  /** Private JWKs (first signs, all are published), read from signingKeys.file; undefined = one generated key. */
  readonly signingKeys?: readonly JWK[];
  readonly upstream: UpstreamIdpConfig;
  readonly registration: {
    readonly dynamic: boolean;
    readonly metadataDocuments: boolean;
    /** Client ID Metadata Documents may be fetched from private, loopback and link-local addresses (development only). */
    readonly allowPrivateNetworks: boolean;
    /** A dynamically registered client unused this long is forgotten. */
    readonly clientTtlMs: number;
  };
  readonly clients: readonly PreRegisteredClient[];
  readonly tokens: {
    readonly accessTokenTtlMs: number;
    readonly refreshTokenTtlMs: number;
    /** IdP claims (ID token, userinfo, GitHub's user) copied into the access tokens, for policy conditions. */
    readonly claims: readonly string[];
  };
  /** How long a user's approval of a client is remembered. */
  readonly consent: { readonly rememberForMs: number };
  readonly grants: readonly ScopeGrant[];
}

/**
 * OpenTelemetry traces (tracing:, or the standard OTEL_* variables): off unless an endpoint is
 * given. Spans go to an OTLP/HTTP collector.
 */
export interface TracingConfig {
  /** The collector's traces URL (OTLP/HTTP, e.g. http://collector:4318/v1/traces). */
  readonly endpoint: string;
  readonly serviceName: string;
  /** Share of new traces recorded (0..1); a caller's sampled flag is followed (parent-based). */
  readonly sampleRatio: number;
  /** Headers sent to the collector (an API key, say); never logged. */
  readonly headers: Readonly<Record<string, string>>;
}

/** The validated, defaulted configuration. Types live apart from validation (see load.ts). */
export interface GatewayConfig {
  readonly file: string;
  readonly listen: { readonly host: string; readonly port: number };
  /** External origin without trailing slash; undefined means "derive from the listening address". */
  readonly publicUrl: string | undefined;
  readonly store: StoreConfig;
  readonly sessions: { readonly idleTimeoutMs: number; readonly maxPerPrincipal: number };
  readonly allowedOrigins: readonly string[];
  readonly maxBodyBytes: number;
  readonly upstreamResponseTimeoutMs: number;
  readonly issuerDiscoveryTimeoutMs: number;
  readonly logLevel: LogLevel;
  /** Off when undefined (neither tracing: nor OTEL_* endpoint variables). */
  readonly tracing?: TracingConfig;
  readonly server: ServerConfig;
  readonly identityToken: IdentityTokenConfig;
  readonly issuers: readonly IssuerConfig[];
  readonly authorizationServerMetadata?: AuthorizationServerMetadataCompat;
  readonly authorizationServer?: AuthorizationServerConfig;
  readonly routes: readonly RouteConfig[];
}
