import type { UpstreamPreset } from './types.js';

/**
 * What each IdP needs of the authorization-server facade when users log in there: the scopes to
 * ask for, the claim that names the user, extra authorization parameters, and for plain OAuth 2.0
 * (GitHub) the endpoints. Plain data, read by the config loader (defaults) and by
 * src/authorization-server/upstream-idp.ts (the quirks). The `resource` parameter (RFC 8707) is
 * never sent to an IdP: the IdP's token is for the gateway, not for an MCP route, and Entra
 * refuses it (AADSTS9010010).
 */
export interface UpstreamPresetDefaults {
  readonly scopes: readonly string[];
  readonly subjectClaim: string;
  /** Prefix of the `sub` the gateway's tokens carry: one IdP's user ids never collide with another's. */
  readonly namespace: string;
  /** Added to every authorization request at the IdP. */
  readonly authorizationParameters?: Readonly<Record<string, string>>;
  /** Plain OAuth 2.0: no discovery, these endpoints instead (the config may override them). */
  readonly endpoints?: { readonly authorization: string; readonly token: string; readonly userinfo: string };
}

export const UPSTREAM_PRESET_DEFAULTS: Readonly<Record<UpstreamPreset, UpstreamPresetDefaults>> = {
  generic: { scopes: ['openid', 'profile', 'email'], subjectClaim: 'sub', namespace: 'idp' },
  // Entra keys a user by `oid` (the same in every application; `sub` is pairwise per app), and
  // hands out a refresh token only for offline_access.
  entra: { scopes: ['openid', 'profile', 'email', 'offline_access'], subjectClaim: 'oid', namespace: 'entra' },
  // Google issues a refresh token only with access_type=offline, and again only with prompt=consent.
  google: {
    scopes: ['openid', 'profile', 'email'],
    subjectClaim: 'sub',
    namespace: 'google',
    authorizationParameters: { access_type: 'offline', prompt: 'consent' },
  },
  // GitHub is OAuth 2.0 without OpenID Connect: no ID token, the user is read from its API and
  // named by the numeric `id` (a login can be renamed and then taken by someone else).
  github: {
    scopes: ['read:user', 'user:email'],
    subjectClaim: 'id',
    namespace: 'github',
    endpoints: {
      authorization: 'https://github.com/login/oauth/authorize',
      token: 'https://github.com/login/oauth/access_token',
      userinfo: 'https://api.github.com/user',
    },
  },
  okta: { scopes: ['openid', 'profile', 'email', 'offline_access'], subjectClaim: 'sub', namespace: 'okta' },
  // Auth0 needs `audience` (authorizationServer.upstream.audience) for a JWT access token.
  auth0: { scopes: ['openid', 'profile', 'email', 'offline_access'], subjectClaim: 'sub', namespace: 'auth0' },
  keycloak: { scopes: ['openid', 'profile', 'email'], subjectClaim: 'sub', namespace: 'keycloak' },
  cognito: { scopes: ['openid', 'profile', 'email'], subjectClaim: 'sub', namespace: 'cognito' },
};
