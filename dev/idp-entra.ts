/**
 * The dev IdP's Entra ID mode (`startDevIdp({ entra: … })` in dev/idp.ts): the same real
 * oidc-provider, configured the way Microsoft Entra ID's v2.0 endpoint behaves towards an app
 * registration, so the authorization-server facade (issue 25) is tested against an IdP that
 * cannot do MCP's profile:
 * - no dynamic client registration (discovery has no `registration_endpoint`);
 * - one confidential client (an app registration): client id + secret, accepted as
 *   `client_secret_basic` or `client_secret_post` (RFC 6749 §2.3.1), redirect URIs settable after
 *   start because the gateway's callback port is only known once it listens;
 * - every RFC 8707 `resource` parameter refused with AADSTS9010010 (`invalid_target`), at the
 *   authorization and the token endpoint alike;
 * - a tenant issuer `http://127.0.0.1:PORT/{tenant id}/v2.0`, served only under OIDC Discovery
 *   (Entra has no RFC 8414 well-known document);
 * - ID tokens with Entra's claims: `oid`, `tid`, `preferred_username`, `name`, `email`, `groups`,
 *   `ver: "2.0"`, and a pairwise `sub` (Entra's `sub` differs per app; `oid` is the user's id);
 * - refresh tokens for `offline_access` (rotated on use, as Entra returns a new one each time).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An Entra user as its ID tokens describe it; every member defaults from the account id. */
export interface EntraAccount {
  /** Object id, the user's stable id in the tenant. Default: a UUID derived from the account id. */
  readonly oid?: string;
  /** Display name. Default: the account id, capitalised. */
  readonly name?: string;
  /** The UPN. Default: `<account id>@contoso.example`. */
  readonly preferred_username?: string;
  /** Default: the same as preferred_username. */
  readonly email?: string;
  /** Group object ids (or names: Entra emits ids, a test may prefer names). Default: none (no claim). */
  readonly groups?: readonly string[];
}

export interface EntraLikeOptions {
  /** The app registration the gateway uses. */
  readonly client: {
    readonly clientId: string;
    readonly clientSecret: string;
    /** The gateway's callback; may be set later with `entra.setRedirectUris`. Default: none yet. */
    readonly redirectUris?: readonly string[];
  };
  /** Tenant id (`tid`, and the issuer's first path segment). Default: a random UUID. */
  readonly tenantId?: string;
  /** Claims per account id (who logs in, see DevIdp.loginAs); unlisted accounts get the defaults. */
  readonly accounts?: Readonly<Record<string, EntraAccount>>;
  /** Default 86400. */
  readonly refreshTokenTtlSeconds?: number;
}

/** The Entra mode's handle on a started dev IdP (`DevIdp.entra`). */
export interface EntraLikeIdp {
  readonly tenantId: string;
  readonly clientId: string;
  /** Replaces the app registration's redirect URIs (e.g. once the gateway's port is known). */
  setRedirectUris(uris: readonly string[]): Promise<void>;
  /** The Entra claims the ID token of account `user` carries (without `sub`, which is pairwise). */
  claimsOf(user: string): EntraClaims;
  /** The pairwise `sub` of account `user` in tokens issued to `clientId` (default: the app registration). */
  subjectOf(user: string, clientId?: string): string;
}

export interface EntraClaims {
  oid: string;
  tid: string;
  name: string;
  preferred_username: string;
  email: string;
  groups?: string[];
}

/** Entra's answer to any `resource` parameter on its v2.0 endpoints. */
export const AADSTS9010010 =
  "AADSTS9010010: The resource parameter provided in the request doesn't match with the requested scopes.";

interface ClientRecord {
  upsert(id: string, payload: Record<string, unknown>): Promise<void>;
}

/** Everything dev/idp.ts needs to run the provider in Entra mode. */
export interface EntraSetup {
  readonly tenantId: string;
  readonly issuerPath: string;
  /** Merged over the dev IdP's configuration for this mode. */
  readonly configuration: Record<string, unknown>;
  /** The oidc-provider account id (Entra's pairwise `sub`) of `user` logging in to `clientId`. */
  readonly accountIdFor: (user: string, clientId: string) => string;
  /** Stores the app registration (in the adapter, so redirect URIs can change later). */
  readonly handle: (clients: ClientRecord) => Promise<EntraLikeIdp>;
}

const DOMAIN = 'contoso.example';

export function entraSetup(
  options: EntraLikeOptions,
  settings: { alg: 'RS256' | 'ES256'; InvalidTarget: new (description?: string) => Error },
): EntraSetup {
  const tenantId = options.tenantId ?? randomUUID();
  const accounts = options.accounts ?? {};
  /** Pairwise account id (the `sub`) → the account the test named. */
  const users = new Map<string, string>();
  const accountIdFor = (user: string, clientId: string): string => {
    const sub = createHash('sha256').update(`${tenantId}:${clientId}:${user}`).digest('base64url').slice(0, 43);
    users.set(sub, user);
    return sub;
  };
  const claimsOf = (user: string): EntraClaims => {
    const account = Object.hasOwn(accounts, user) ? accounts[user] : undefined;
    const upn = account?.preferred_username ?? `${user}@${DOMAIN}`;
    return {
      oid: account?.oid ?? uuidFrom(`${tenantId}:${user}`),
      tid: tenantId,
      name: account?.name ?? user.charAt(0).toUpperCase() + user.slice(1),
      preferred_username: upn,
      email: account?.email ?? upn,
      ...(account?.groups ? { groups: [...account.groups] } : {}),
    };
  };

  const configuration: Record<string, unknown> = {
    // Which scope releases which claim. Entra sends oid/tid/groups whatever the scope; ver marks v2.0 tokens.
    claims: {
      openid: ['sub', 'oid', 'tid', 'groups', 'ver'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
    },
    // Entra puts profile and email claims into the ID token of a code flow; oidc-provider's default
    // (conform) would keep them for the userinfo endpoint only.
    conformIdTokenClaims: false,
    // Entra's `sub` is pairwise per application; `oid` is what identifies the user across apps.
    // oidc-provider makes `sub` the account id (its pairwise subject type would demand a
    // sector_identifier_uri as soon as two redirect URIs differ in host or port), so the login
    // names the account by its pairwise id (`accountIdFor`) and this maps it back.
    findAccount: async (_ctx: unknown, id: string) => {
      const user = users.get(id);
      return user === undefined ? undefined : { accountId: id, claims: async () => ({ sub: id, ver: '2.0', ...claimsOf(user) }) };
    },
    clientDefaults: { id_token_signed_response_alg: settings.alg },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: false },
      introspection: { enabled: false },
      // Enabled only to refuse: Entra's v2.0 endpoint answers any `resource` with AADSTS9010010
      // (at /authorize, before login), where oidc-provider with the feature off would ignore it.
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => false,
        getResourceServerInfo: async () => {
          throw new settings.InvalidTarget(AADSTS9010010);
        },
      },
    },
    pkce: { required: () => true },
    // What cannot go back to the client (an unknown client, an unregistered redirect URI) is shown
    // on the IdP's own page, as Entra does; this one is plain and prints no oidc-provider notice.
    renderError: async (ctx: { type: string; body: string }, out: { error?: string; error_description?: string }) => {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>Sign in error</title><h1>${escapeHtml(out.error ?? 'error')}</h1><p>${escapeHtml(out.error_description ?? '')}</p>`;
    },
    // Entra hands out a new refresh token with every refresh.
    rotateRefreshToken: true,
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 86_400,
      RefreshToken: options.refreshTokenTtlSeconds ?? 86_400,
    },
  };

  const clientMetadata = (redirectUris: readonly string[]) => ({
    client_id: options.client.clientId,
    client_secret: options.client.clientSecret,
    // oidc-provider accepts basic and post for either (lib/shared/client_auth.js), as Entra does.
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [...redirectUris],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  });

  return {
    tenantId,
    issuerPath: `/${tenantId}/v2.0`,
    configuration,
    accountIdFor,
    async handle(clients) {
      await clients.upsert(options.client.clientId, clientMetadata(options.client.redirectUris ?? []));
      return {
        tenantId,
        clientId: options.client.clientId,
        setRedirectUris: (uris) => clients.upsert(options.client.clientId, clientMetadata(uris)),
        claimsOf,
        subjectOf: (user, clientId = options.client.clientId) => accountIdFor(user, clientId),
      };
    },
  };
}

/**
 * Entra mode's request routing: the provider lives under the tenant issuer's path (oidc-provider
 * computes its URLs from `originalUrl`, as when mounted by a framework). Nothing else is served:
 * no RFC 8414 document, as Entra has none. The IdP session cookie is not passed on to the
 * authorization endpoint, so every authorization logs in (and DevIdp.loginAs always applies).
 */
export function routeEntra(
  req: IncomingMessage,
  res: ServerResponse,
  mountPath: string,
  providerHandler: (req: IncomingMessage, res: ServerResponse) => void,
): void {
  const url = new URL(req.url ?? '/', 'http://idp.invalid');
  const inner = url.pathname.startsWith(`${mountPath}/`) ? url.pathname.slice(mountPath.length) : undefined;
  // oidc-provider also answers the RFC 8414 path; Entra does not.
  if (inner === undefined || inner === '/.well-known/oauth-authorization-server') {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found');
    return;
  }
  if (inner === '/auth' && req.method === 'GET') {
    withConsentForOfflineAccess(url);
    delete req.headers.cookie;
  }
  (req as IncomingMessage & { originalUrl?: string }).originalUrl = `${url.pathname}${url.search}`;
  req.url = `${inner}${url.search}`;
  providerHandler(req, res);
}

/**
 * OIDC Core §11 lets an OP issue refresh tokens for `offline_access` only with `prompt=consent`
 * (oidc-provider drops the scope otherwise); Entra issues them without it. So an Entra-mode
 * authorization request asking for offline_access is handled as if it carried prompt=consent,
 * which the dev IdP's automatic consent answers unseen.
 */
function withConsentForOfflineAccess(url: URL): void {
  const scopes = (url.searchParams.get('scope') ?? '').split(' ');
  const prompt = (url.searchParams.get('prompt') ?? '').split(' ').filter(Boolean);
  if (scopes.includes('offline_access') && !prompt.includes('consent')) {
    url.searchParams.set('prompt', [...prompt, 'consent'].join(' '));
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A UUID-shaped id derived from `seed`, so the same account keeps its oid across runs. */
function uuidFrom(seed: string): string {
  const hex = createHash('sha256').update(seed).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
