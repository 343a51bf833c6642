/**
 * Development OpenID Provider: a REAL `oidc-provider` instance (never a fake) served by plain
 * `node:http`, for end-to-end tests and `npm run demo`.
 *
 * What it gives the gateway's tests:
 * - discovery (OIDC Discovery 1.0, and the same document under the RFC 8414 well-known path),
 * - open dynamic client registration (RFC 7591), public clients included,
 * - authorization code + PKCE (RFC 7636, S256, always required, as in OAuth 2.1),
 * - resource indicators (RFC 8707) producing RFC 9068 `at+jwt` access tokens for ANY resource,
 * - no browser: login and consent are answered automatically (see `handleInteraction`), and
 *   `completeAuthorization` walks the redirects with fetch and a tiny cookie jar.
 *
 * With `entra` set it stands for Microsoft Entra ID instead (dev/idp-entra.ts): no registration,
 * one confidential client, `resource` refused, Entra's ID token claims, refresh tokens. Either way
 * a test can say who logs in next (`loginAs`), make logins fail (`failAuthorizations`) or take
 * the IdP down and up again (`down`, `up`).
 *
 * Not for production: in-memory storage, auto-login of whoever `login_hint` names, auto-consent.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { exchangeClientMetadata, registerExchangeGrants, type DevExchangeControl, type DevExchangeOptions } from './idp-exchange.js';

export type { DevExchangeCall, DevExchangeClient, DevExchangeControl, DevExchangeOptions } from './idp-exchange.js';

import { entraSetup, routeEntra, type EntraLikeIdp, type EntraLikeOptions } from './idp-entra.js';

export { AADSTS9010010, type EntraAccount, type EntraClaims, type EntraLikeIdp, type EntraLikeOptions } from './idp-entra.js';

export interface DevIdpOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** Scopes the IdP defines (besides openid); registered clients may ask for ANY of these. */
  scopes: string[];
  /** Algorithm of the access-token JWTs (and the only signing key in the JWKS). Default RS256. */
  signingAlg?: 'RS256' | 'ES256';
  /** Default 600. */
  accessTokenTtlSeconds?: number;
  /** Who "logs in" when the authorization request carries no login_hint. Default 'alice'. */
  defaultSubject?: string;
  /** Access tokens for resources: RFC 9068 JWTs (default) or opaque strings (for introspection). */
  accessTokenFormat?: 'jwt' | 'opaque';
  /** Confidential clients allowed to call the RFC 7662 introspection endpoint. */
  introspectionClients?: { clientId: string; clientSecret: string; authMethod: 'client_secret_basic' | 'client_secret_post' }[];
  /**
   * Extra claims in the access tokens of each subject (e.g. `{ alice: { groups: ['admins'] } }`),
   * as an IdP adds group or tenant claims; for tests of policy `when: { claims }` conditions.
   */
  accountClaims?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /**
   * Run as an Entra ID look-alike instead (dev/idp-entra.ts): no registration, one confidential
   * client, `resource` refused, Entra's ID token claims, refresh tokens, a tenant issuer path.
   * `scopes` then lists scopes besides openid, profile, email and offline_access (may be empty);
   * `accessTokenFormat`, `introspectionClients` and `accountClaims` do not apply.
   */
  entra?: EntraLikeOptions;
  /**
   * RFC 8693 token exchange and the jwt-bearer grant in Entra's on-behalf-of shape (see
   * dev/idp-exchange.ts), for these confidential clients; off when absent.
   */
  tokenExchange?: DevExchangeOptions;
  /**
   * Confidential clients that log users in with the code flow, as a gateway that is itself an
   * authorization server does (issue 25). Registered as native apps, so a loopback redirect URI
   * matches on any port (RFC 8252 §7.3): a gateway on an ephemeral port can be named in advance.
   * Their ID tokens and userinfo carry `accountClaims` too.
   */
  loginClients?: DevLoginClient[];
}

/** A confidential client that logs users in with the code flow (DevIdpOptions.loginClients). */
export interface DevLoginClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  /**
   * Its access tokens are for this API (RFC 9068 at+jwt, `aud` = it), as Auth0 issues them with
   * `audience` or Entra with an API scope, instead of opaque tokens for userinfo: a resource server
   * can verify them with the JWKS. Userinfo is then off (no token could call it) and the account
   * claims go into the ID token. Their lifetime is `setLoginTokenTtl`'s (default 600 s).
   */
  apiResource?: string;
  /** A refresh token with every login, rotated on each use (RFC 6749 §6; RFC 9700 §4.14.2). */
  refreshTokens?: boolean;
}

/** How the next logins end (DevIdp.failAuthorizations): an RFC 6749 §4.1.2.1 error to the client. */
export interface DevIdpAuthorizationError {
  error: string;
  error_description?: string;
}

export interface DevIdp {
  /** e.g. http://127.0.0.1:PORT (no trailing slash). */
  issuer: string;
  /** Every request the IdP received (method and path), so tests can count fetches and introspections. */
  requests: { method: string; path: string }[];
  /**
   * DEV/TEST ONLY: the IdP's one signing key, private half included, so tests can mint tokens
   * that differ from a real one in exactly one property (test/e2e/jwt-attacks.test.ts). A real
   * IdP never exposes this; nothing outside tests may use it.
   */
  signingKey: DevSigningKey;
  /**
   * Who logs in at every following login interaction, over `login_hint` and defaultSubject;
   * undefined goes back to those. In the default mode an IdP session in a browser can skip the
   * login (completeAuthorization never has one); in Entra mode every authorization logs in.
   */
  loginAs(subject: string | undefined): void;
  /**
   * Every following login ends with this error, sent to the client's redirect URI with its
   * `state` (e.g. `{ error: 'access_denied' }` for a user who cancels); undefined stops that.
   */
  failAuthorizations(error: DevIdpAuthorizationError | undefined): void;
  /** The IdP goes down: the listener closes and every connection is cut (clients get ECONNREFUSED). */
  down(): Promise<void>;
  /** Back up on the same port, with all its state (clients, grants, keys). */
  up(): Promise<void>;
  /** Set in Entra mode (DevIdpOptions.entra). */
  entra?: EntraLikeIdp;
  /** Lifetime of the access tokens issued from now on to login clients with an `apiResource`. */
  setLoginTokenTtl(seconds: number): void;
  /** With `tokenExchange`: the exchanges asked for, and the fault the grants answer with (tests set it). */
  exchange: DevExchangeControl;
  /** Closes the HTTP server and all its connections. */
  close(): Promise<void>;
}

/** The dev IdP's signing key (see `DevIdp.signingKey`): never exposed by a real IdP. */
export interface DevSigningKey {
  readonly alg: 'RS256' | 'ES256';
  /** The `kid` the IdP's JWKS and tokens carry. */
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** The key as the IdP's JWKS publishes it (public members, kid, alg, use). */
  readonly publicJwk: JWK;
}

export interface ObtainAccessTokenOptions {
  /** RFC 8707 resource indicator; becomes the token's `aud`. */
  resource: string;
  /** RFC 9449: bind the token to this key pair (the token request carries a DPoP proof of it). */
  dpopKey?: { privateKey: CryptoKey; publicJwk: JWK; alg: 'ES256' | 'RS256' };
  /** Space-separated scopes to request. */
  scope: string;
  /** Sent as `login_hint`; default: the IdP's defaultSubject. */
  subject?: string;
  /** Reuse an existing registration (e.g. to step up scope with the same client). Default: register a new public client. */
  clientId?: string;
  /** Redirect URI of that client; default: the one `registerPublicClient` uses. */
  redirectUri?: string;
}

export interface ObtainedAccessToken {
  accessToken: string;
  clientId: string;
  /** `scope` of the token response. */
  scope: string;
  /** The whole token endpoint response, for assertions (e.g. that no refresh_token was issued). */
  tokenResponse: Record<string, unknown>;
}

/** Redirect URI registered by `registerPublicClient`. Never served: `completeAuthorization` stops at it. */
export const DEFAULT_REDIRECT_URI = 'http://127.0.0.1/callback';

// ---------------------------------------------------------------------------------------------
// Minimal typings for the parts of oidc-provider we use (the package ships no .d.ts).
// ---------------------------------------------------------------------------------------------

type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;

interface OidcInteraction {
  uid: string;
  prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}

interface OidcGrant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}

interface OidcProvider {
  callback(): NodeHandler;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<OidcInteraction>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: {
    new (init: { accountId: string; clientId: string }): OidcGrant;
    find(id: string): Promise<OidcGrant | undefined>;
  };
}

type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;

interface OidcProviderModule {
  default: ProviderConstructor;
  errors: { InvalidTarget: new (description?: string) => Error };
}

let providerModule: Promise<OidcProviderModule> | undefined;

/**
 * Imports oidc-provider once. It warns at import time on Node < 22 ("Unsupported runtime"); this
 * project supports Node 20 and the dev IdP works there, so that single notice is dropped to keep
 * test output clean. Everything else oidc-provider prints still goes through.
 */
function loadProvider(): Promise<OidcProviderModule> {
  providerModule ??= (async () => {
    const specifier = 'oidc-provider'; // a non-literal specifier: the package has no type declarations
    const originalWarn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
      originalWarn(...args);
    };
    try {
      return (await import(specifier)) as OidcProviderModule;
    } finally {
      console.warn = originalWarn;
    }
  })();
  return providerModule;
}

// ---------------------------------------------------------------------------------------------
// Storage: a per-instance in-memory adapter. oidc-provider's built-in one is module-global and
// prints a "development-only" warning; this one is just as volatile but isolated per IdP.
// ---------------------------------------------------------------------------------------------

type Payload = Record<string, unknown> & { grantId?: string; uid?: string; userCode?: string };

class MemoryAdapter {
  constructor(
    private readonly model: string,
    private readonly store: Map<string, { payload: Payload; expiresAt?: number }>,
  ) {}

  private key(id: string): string {
    return `${this.model}:${id}`;
  }

  async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    this.store.set(this.key(id), { payload, expiresAt });
  }

  async find(id: string): Promise<Payload | undefined> {
    const entry = this.store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.store.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid: string): Promise<Payload | undefined> {
    return this.findWhere((p) => p.uid === uid);
  }

  async findByUserCode(userCode: string): Promise<Payload | undefined> {
    return this.findWhere((p) => p.userCode === userCode);
  }

  async consume(id: string): Promise<void> {
    const payload = await this.find(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    this.store.delete(this.key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    for (const [key, { payload }] of this.store) {
      if (payload.grantId === grantId) this.store.delete(key);
    }
  }

  private async findWhere(predicate: (payload: Payload) => boolean): Promise<Payload | undefined> {
    const prefix = `${this.model}:`;
    for (const [key] of this.store) {
      if (!key.startsWith(prefix)) continue;
      const payload = await this.find(key.slice(prefix.length));
      if (payload && predicate(payload)) return payload;
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------------------------

/** One signing key for `alg`, with a kid so resource servers can pick it from the JWKS. */
async function generateSigningKey(alg: 'RS256' | 'ES256'): Promise<{ signingJwk: JWK; signingKey: DevSigningKey }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `dev-${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`;
  const signingJwk = { ...(await exportJWK(privateKey)), alg, use: 'sig', kid };
  const publicJwk = { ...(await exportJWK(publicKey)), alg, use: 'sig', kid };
  return { signingJwk, signingKey: { alg, kid, privateKey, publicJwk } };
}

interface ProviderSettings {
  scopes: string[];
  signingJwk: JWK;
  alg: 'RS256' | 'ES256';
  accessTokenTtlSeconds: number;
  accessTokenFormat: 'jwt' | 'opaque';
  introspectionClients: NonNullable<DevIdpOptions['introspectionClients']>;
  accountClaims: NonNullable<DevIdpOptions['accountClaims']>;
  store: AdapterStore;
  /** More static clients (token exchange's). */
  extraClients?: Record<string, unknown>[];
  loginClients: NonNullable<DevIdpOptions['loginClients']>;
  /** Read at each issuance: DevIdp.setLoginTokenTtl changes it. */
  loginTokenTtl: { seconds: number };
}

type AdapterStore = Map<string, { payload: Payload; expiresAt?: number }>;

function buildConfiguration(settings: ProviderSettings): Record<string, unknown> {
  const { scopes, signingJwk, alg, accessTokenTtlSeconds, accessTokenFormat, introspectionClients, accountClaims, store, loginClients, loginTokenTtl } = settings;
  const loginClient = (clientId: string | undefined) => loginClients.find((client) => client.clientId === clientId);
  const apiResources = new Set(loginClients.flatMap((client) => (client.apiResource !== undefined ? [client.apiResource] : [])));
  // Released with the openid scope, in ID tokens and userinfo alike.
  const claimNames = [...new Set(Object.values(accountClaims).flatMap((claims) => Object.keys(claims)))];
  // `offline_access` is deliberately absent (oidc-provider's default includes it): no refresh tokens.
  const allScopes = ['openid', ...scopes.filter((s) => s !== 'openid' && s !== 'offline_access')];

  return {
    adapter: (model: string) => new MemoryAdapter(model, store),
    // Resource servers that introspect opaque tokens (RFC 7662) authenticate as these clients.
    clients: [
      ...introspectionClients.map((client) => ({
        client_id: client.clientId,
        client_secret: client.clientSecret,
        token_endpoint_auth_method: client.authMethod,
        redirect_uris: [],
        grant_types: [],
        response_types: [],
      })),
      ...(settings.extraClients ?? []),
      ...loginClients.map((client) => ({
        client_id: client.clientId,
        client_secret: client.clientSecret,
        token_endpoint_auth_method: 'client_secret_basic',
        application_type: 'native',
        redirect_uris: client.redirectUris,
        grant_types: client.refreshTokens ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
        response_types: ['code'],
      })),
    ],
    jwks: { keys: [signingJwk] },
    // Fresh random keys per instance: cookies only need to survive one IdP's lifetime.
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: allScopes,
    findAccount: async (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: async () => ({ sub: id, ...(Object.hasOwn(accountClaims, id) ? accountClaims[id] : {}) }),
    }),
    // oidc-provider's default claims, with the account claims added to `openid`.
    claims: { acr: null, sid: null, auth_time: null, iss: null, openid: ['sub', ...claimNames] },
    // With API access tokens there is no userinfo to read claims from: the ID token carries them.
    ...(apiResources.size > 0 ? { conformIdTokenClaims: false } : {}),
    // Into JWT access tokens and introspection answers alike (oidc-provider's extraTokenClaims).
    extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) =>
      token.accountId !== undefined && Object.hasOwn(accountClaims, token.accountId) ? { ...accountClaims[token.accountId] } : undefined,

    // oidc-provider refuses a scope that is in `scopes` but not in the client's registered `scope`.
    // Registration policies only run with adapter-backed initial access tokens, so instead we
    // claim `scope` as "extra" client metadata: the validator runs on every client (at
    // registration and whenever a stored client is loaded) and may rewrite the metadata. Every
    // client may thus ask for every scope, which lets the MCP client step up to a wider scope
    // with the registration it made for a narrower one.
    extraClientMetadata: {
      properties: ['scope'],
      validator(_ctx: unknown, key: string, _value: unknown, metadata: Record<string, unknown>) {
        if (key === 'scope') metadata.scope = allScopes.join(' ');
      },
    },
    // With only an EC key in the JWKS, the RS256 default for ID tokens would have no key.
    clientDefaults: { id_token_signed_response_alg: alg },

    features: {
      devInteractions: { enabled: false }, // replaced by handleInteraction
      // RFC 7591, open: no initial access token (the MCP SDK registers anonymously).
      registration: { enabled: true, initialAccessToken: false },
      // RFC 7662, for resource servers given opaque access tokens.
      introspection: { enabled: true },
      // A login client's API token (apiResource) could not call userinfo (oidc-provider refuses tokens with an audience there).
      userinfo: { enabled: apiResources.size === 0 },
      // RFC 9449: a token request with a DPoP proof gets a token bound to that key (cnf.jkt).
      dPoP: { enabled: true },
      // RFC 8707: every resource indicator is a resource server taking JWT access tokens (RFC 9068),
      // or opaque ones when the IdP is started with accessTokenFormat: 'opaque'.
      resourceIndicators: {
        enabled: true,
        // A login client with an apiResource gets tokens for it without asking (Auth0's `audience`).
        defaultResource: async (_ctx: unknown, client: { clientId: string }) => loginClient(client.clientId)?.apiResource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, resource: string) =>
          apiResources.has(resource)
            ? { scope: scopes.join(' '), accessTokenFormat: 'jwt', accessTokenTTL: loginTokenTtl.seconds, jwt: { sign: { alg } } }
            : { scope: scopes.join(' '), accessTokenFormat, accessTokenTTL: accessTokenTtlSeconds, jwt: { sign: { alg } } },
      },
    },
    // OAuth 2.1: PKCE for every client, not only public ones (S256 is the only method offered).
    pkce: { required: () => true },
    // A custom function also makes oidc-provider advertise the refresh_token grant, so clients that
    // register grant_types [authorization_code, refresh_token] (the MCP SDK does) are accepted;
    // none is ever issued to them, so a step-up must go through a new authorization. Login
    // clients with refreshTokens get one, rotated on each use.
    issueRefreshToken: async (_ctx: unknown, client: { clientId: string }) => loginClient(client.clientId)?.refreshTokens === true,
    rotateRefreshToken: true,
    clientBasedCORS: () => true,
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // Explicit TTLs (oidc-provider nags about every default it has to use).
    ttl: {
      // A resource server's own lifetime where it has one (login clients' API tokens: setLoginTokenTtl).
      AccessToken: (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) => token.resourceServer?.accessTokenTTL ?? accessTokenTtlSeconds,
      AuthorizationCode: 60,
      IdToken: 600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 3600,
    },
    // Errors are answered to the client anyway; keep the default renderer, it prints nothing.
  };
}

/** GET /interaction/:uid → the uid, else undefined. */
function interactionUid(req: IncomingMessage): string | undefined {
  if (req.method !== 'GET' || !req.url) return undefined;
  const match = /^\/interaction\/([^/?]+)(?:\?|$)/.exec(req.url);
  return match?.[1];
}

/**
 * Answers the provider's interactions without a UI: `login` logs in whoever `login` names for
 * the request's `login_hint` (or ends the authorization with the error it returns); `consent`
 * grants everything that is missing. The result goes back through the provider's resume
 * endpoint via a 303.
 */
async function handleInteraction(
  provider: OidcProvider,
  login: (hint: string | undefined, clientId: string) => { accountId: string } | DevIdpAuthorizationError,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  // Each interaction is answered once, from scratch: nothing to merge with.
  const finish = (result: Record<string, unknown>) =>
    provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });

  switch (details.prompt.name) {
    case 'login': {
      const hint = details.params.login_hint;
      const outcome = login(typeof hint === 'string' && hint !== '' ? hint : undefined, String(details.params.client_id));
      // oidc-provider sends an interaction's error to the client's redirect URI, with state and iss.
      return finish('accountId' in outcome ? { login: { accountId: outcome.accountId } } : { ...outcome });
    }
    case 'consent':
      return finish({ consent: { grantId: await grantEverythingMissing(provider, details) } });
    default:
      return finish({ error: 'access_denied', error_description: `unsupported prompt ${details.prompt.name}` });
  }
}

/** Consent: grant exactly what the consent prompt reports missing (OIDC scopes/claims, RFC 8707 resource scopes). */
async function grantEverythingMissing(provider: OidcProvider, details: OidcInteraction): Promise<string> {
  const accountId = details.session?.accountId;
  const clientId = details.params.client_id;
  if (!accountId || typeof clientId !== 'string') throw new Error('consent interaction without a session or client');

  const existing = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  const grant = existing ?? new provider.Grant({ accountId, clientId });

  const missing = details.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return grant.save();
}

function respondPlain(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(message);
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startDevIdp(opts: DevIdpOptions): Promise<DevIdp> {
  const host = opts.host ?? '127.0.0.1';
  const alg = opts.signingAlg ?? 'RS256';
  const defaultSubject = opts.defaultSubject ?? 'alice';
  const { default: Provider, errors } = await loadProvider();
  const { signingJwk, signingKey } = await generateSigningKey(alg);
  const store: AdapterStore = new Map();
  const loginTokenTtl = { seconds: 600 };
  const entra = opts.entra ? entraSetup(opts.entra, { alg, InvalidTarget: errors.InvalidTarget }) : undefined;
  const mountPath = entra?.issuerPath ?? '';

  // The issuer contains the port, so listen first and install the handler afterwards.
  let handler: NodeHandler = (_req, res) => respondPlain(res, 503, 'starting');
  const server = createServer((req, res) => handler(req, res));
  const address = await listen(server, opts.port ?? 0, host);
  const hostInUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const origin = `http://${hostInUrl}:${address.port}`;
  const issuer = `${origin}${mountPath}`;

  const configuration = entra
    ? entraConfiguration(entra.configuration, { scopes: opts.scopes, signingJwk, store })
    : buildConfiguration({
        scopes: opts.scopes,
        signingJwk,
        alg,
        accessTokenTtlSeconds: opts.accessTokenTtlSeconds ?? 600,
        accessTokenFormat: opts.accessTokenFormat ?? 'jwt',
        introspectionClients: opts.introspectionClients ?? [],
        accountClaims: opts.accountClaims ?? {},
        store,
        loginClients: opts.loginClients ?? [],
        loginTokenTtl,
        ...(opts.tokenExchange ? { extraClients: exchangeClientMetadata(opts.tokenExchange.clients) } : {}),
      });
  const provider = new Provider(issuer, configuration);
  const exchange: DevExchangeControl = opts.tokenExchange
    ? registerExchangeGrants(provider, opts.tokenExchange, { issuer, alg, kid: signingKey.kid, privateKey: signingKey.privateKey, publicJwk: signingKey.publicJwk })
    : { fault: 'none', delayMs: 0, calls: [] };
  // Plain http on loopback works as is: oidc-provider marks cookies `secure` only when the request
  // itself is (Koa's ctx.secure), and we don't set `proxy`, so X-Forwarded-Proto is ignored.
  const providerHandler = provider.callback();

  let loginOverride: string | undefined;
  let loginError: DevIdpAuthorizationError | undefined;
  const login = (hint: string | undefined, clientId: string) => {
    if (loginError) return { ...loginError };
    const user = loginOverride ?? hint ?? defaultSubject;
    return { accountId: entra ? entra.accountIdFor(user, clientId) : user };
  };

  const requests: DevIdp['requests'] = [];
  handler = (req, res) => {
    requests.push({ method: req.method ?? '', path: req.url?.split('?')[0] ?? '' });
    const uid = interactionUid(req);
    if (uid !== undefined) {
      handleInteraction(provider, login, req, res).catch((err: unknown) => {
        respondPlain(res, 400, `interaction failed: ${err instanceof Error ? err.message : String(err)}`);
      });
      return;
    }
    if (entra) {
      routeEntra(req, res, mountPath, providerHandler);
      return;
    }
    // RFC 8414 §3: serve the same metadata at /.well-known/oauth-authorization-server, which MCP
    // clients try first (OIDC Discovery metadata is a valid RFC 8414 document).
    if (req.url?.split('?')[0] === '/.well-known/oauth-authorization-server') {
      req.url = '/.well-known/openid-configuration';
    }
    providerHandler(req, res);
  };

  const adapterClients = new MemoryAdapter('Client', store);
  let listening = true;
  const stopListening = async (): Promise<void> => {
    if (!listening) return;
    listening = false;
    await new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    });
  };

  return {
    issuer,
    requests,
    signingKey,
    loginAs(subject) {
      loginOverride = subject;
    },
    failAuthorizations(error) {
      loginError = error ? { ...error } : undefined;
    },
    down: stopListening,
    async up() {
      if (listening) return;
      await listen(server, address.port, host);
      listening = true;
    },
    ...(entra ? { entra: await entra.handle(adapterClients) } : {}),
    setLoginTokenTtl(seconds) {
      loginTokenTtl.seconds = seconds;
    },
    exchange,
    close: stopListening,
  };
}

/** The parts of the dev IdP's configuration that do not depend on the mode, with Entra's. */
function entraConfiguration(
  entra: Record<string, unknown>,
  settings: { scopes: string[]; signingJwk: JWK; store: AdapterStore },
): Record<string, unknown> {
  const extra = settings.scopes.filter((s) => !['openid', 'profile', 'email', 'offline_access'].includes(s));
  return {
    adapter: (model: string) => new MemoryAdapter(model, settings.store),
    jwks: { keys: [settings.signingJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'profile', 'email', 'offline_access', ...extra],
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    ...entra,
  };
}

// ---------------------------------------------------------------------------------------------
// Browserless client side
// ---------------------------------------------------------------------------------------------

/** Just enough of RFC 6265 for one user agent talking to one host: name, value, path, deletion. */
export class CookieJar {
  private readonly cookies = new Map<string, { name: string; value: string; path: string }>();

  store(response: Response, requestUrl: URL): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = defaultCookiePath(requestUrl);
      let expired = false;
      for (const attribute of attributes) {
        const [rawKey = '', ...rest] = attribute.split('=');
        const key = rawKey.trim().toLowerCase();
        const attrValue = rest.join('=').trim();
        if (key === 'path' && attrValue.startsWith('/')) path = attrValue;
        if (key === 'expires' && Date.parse(attrValue) <= Date.now()) expired = true;
        if (key === 'max-age' && Number(attrValue) <= 0) expired = true;
      }
      const id = `${name};${path}`;
      if (expired || value === '') this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path });
    }
  }

  header(url: URL): string {
    return [...this.cookies.values()]
      .filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

/** RFC 6265 §5.1.4 default-path. */
function defaultCookiePath(url: URL): string {
  const lastSlash = url.pathname.lastIndexOf('/');
  return lastSlash <= 0 ? '/' : url.pathname.slice(0, lastSlash);
}

/** Same origin and path as the registered redirect URI (the query carries the response). */
function isRedirectUriHit(location: URL, redirectUri: URL): boolean {
  return location.origin === redirectUri.origin && location.pathname === redirectUri.pathname;
}

const MAX_REDIRECTS = 20;

/**
 * Follows an authorization URL (as produced by an OAuth client, e.g. the MCP SDK's
 * redirectToAuthorization) through the IdP's login+consent interactions without a browser
 * (manual redirects with fetch, carrying cookies), and returns the `code` from the final redirect
 * to the client's redirect_uri. `subject` is sent as OIDC `login_hint` so tests choose who logs in.
 * An error response (RFC 6749 §4.1.2.1) is thrown as an Error carrying `error`/`error_description`.
 */
export async function completeAuthorization(
  authorizationUrl: URL | string,
  opts: { subject?: string } = {},
): Promise<{ code: string; state: string | null }> {
  let url = new URL(authorizationUrl);
  if (opts.subject !== undefined) url.searchParams.set('login_hint', opts.subject);
  const redirectUriParam = url.searchParams.get('redirect_uri');
  if (!redirectUriParam) throw new Error('authorization URL has no redirect_uri');
  const redirectUri = new URL(redirectUriParam);
  const jar = new CookieJar(); // a fresh user agent: no session, so login always happens

  for (let hop = 0; hop < MAX_REDIRECTS; hop++) {
    const cookie = jar.header(url);
    const response = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    jar.store(response, url);
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) {
      const body = await response.text();
      throw new Error(`authorization stopped at ${url.href} with HTTP ${response.status}: ${body.slice(0, 500)}`);
    }
    await response.body?.cancel();

    const next = new URL(location, url);
    if (isRedirectUriHit(next, redirectUri)) return authorizationResponse(next);
    url = next;
  }
  throw new Error(`authorization did not reach ${redirectUri.href} within ${MAX_REDIRECTS} redirects`);
}

function authorizationResponse(location: URL): { code: string; state: string | null } {
  const params = location.searchParams;
  const error = params.get('error');
  if (error) {
    const description = params.get('error_description');
    throw Object.assign(new Error(`authorization failed: ${error}${description ? ` (${description})` : ''}`), {
      error,
      error_description: description,
    });
  }
  const code = params.get('code');
  if (!code) throw new Error(`redirect to ${location.origin}${location.pathname} carries neither code nor error`);
  return { code, state: params.get('state') };
}

interface DiscoveredMetadata {
  authorization_endpoint: string;
  token_endpoint: string;
  registration_endpoint: string;
  jwks_uri: string;
}

async function fetchJson(url: string | URL, init?: RequestInit): Promise<Record<string, unknown>> {
  const response = await fetch(url, init);
  const text = await response.text();
  if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${String(url)} → HTTP ${response.status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** OIDC Discovery 1.0 metadata of the IdP. */
export async function discover(idp: DevIdp): Promise<DiscoveredMetadata & Record<string, unknown>> {
  return (await fetchJson(`${idp.issuer}/.well-known/openid-configuration`)) as DiscoveredMetadata &
    Record<string, unknown>;
}

/** RFC 7591 registration of a public client (token_endpoint_auth_method none), like the MCP SDK does. */
export async function registerPublicClient(
  idp: DevIdp,
  opts: { scope?: string; redirectUri?: string } = {},
): Promise<{ clientId: string; registration: Record<string, unknown> }> {
  const { registration_endpoint } = await discover(idp);
  const registration = await fetchJson(registration_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'dev-idp helper',
      redirect_uris: [opts.redirectUri ?? DEFAULT_REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...(opts.scope !== undefined ? { scope: opts.scope } : {}),
    }),
  });
  return { clientId: String(registration.client_id), registration };
}

/** RFC 7636 S256 pair. */
function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/**
 * Convenience for raw-HTTP tests and the demo: dynamic client registration (unless `clientId` is
 * given) + PKCE + authorization code + token exchange, returning the access token (an RFC 9068
 * at+jwt) for `resource` with `scope`.
 */
export async function obtainAccessToken(idp: DevIdp, opts: ObtainAccessTokenOptions): Promise<ObtainedAccessToken> {
  const metadata = await discover(idp);
  const redirectUri = opts.redirectUri ?? DEFAULT_REDIRECT_URI;
  const clientId = opts.clientId ?? (await registerPublicClient(idp, { scope: opts.scope, redirectUri })).clientId;

  const { verifier, challenge } = pkcePair();
  const state = randomBytes(16).toString('base64url');
  const authorizationUrl = new URL(metadata.authorization_endpoint);
  authorizationUrl.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: opts.scope,
    resource: opts.resource, // RFC 8707
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();

  const result = await completeAuthorization(authorizationUrl, { subject: opts.subject });
  if (result.state !== state) throw new Error('authorization response state mismatch');

  const dpopHeader: Record<string, string> = opts.dpopKey
    ? { dpop: await new SignJWT({ htm: 'POST', htu: metadata.token_endpoint, jti: randomBytes(16).toString('base64url') })
        .setProtectedHeader({ typ: 'dpop+jwt', alg: opts.dpopKey.alg, jwk: opts.dpopKey.publicJwk })
        .setIssuedAt()
        .sign(opts.dpopKey.privateKey) }
    : {};
  const tokenResponse = await fetchJson(metadata.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...dpopHeader },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: result.code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
      client_id: clientId,
      resource: opts.resource,
    }),
  });
  if (typeof tokenResponse.access_token !== 'string') throw new Error('token response without access_token');
  return {
    accessToken: tokenResponse.access_token,
    clientId,
    scope: typeof tokenResponse.scope === 'string' ? tokenResponse.scope : '',
    tokenResponse,
  };
}
