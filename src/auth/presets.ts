import { PRESET_NAMES, type ClaimMapping, type ClaimValue, type PresetName, type RequiredClaimValue } from '../config/types.js';

export { PRESET_NAMES };
export type { ClaimValue, PresetName, RequiredClaimValue };

/**
 * How well-known IdPs shape their access tokens, so an issuer entry can say `preset: okta`
 * instead of spelling out claims and `typ`. Explicit settings on the issuer override these.
 * Each preset has a test feeding a token in that IdP's real shape (test/unit/presets.test.ts).
 */
export interface IssuerPreset {
  readonly claims: ClaimMapping;
  /** Accepted `typ` header values, compared case-insensitively without `application/`; `absent` = no typ. */
  readonly typ: readonly string[];
  /** Claims every token must carry (merged under the issuer's own `requireClaims`). */
  readonly requireClaims?: Readonly<Record<string, RequiredClaimValue>>;
}

export const PRESETS: Readonly<Record<PresetName, IssuerPreset>> = {
  // RFC 9068 access tokens; `scp` too, which several IdPs use.
  generic: { claims: { scopes: ['scope', 'scp'], subject: 'sub', client: ['client_id', 'azp'] }, typ: ['at+jwt'] },
  // Auth0: `scope`, and RBAC `permissions` when "Add Permissions in the Access Token" is on;
  // header typ is `at+jwt` with the RFC 9068 token profile, `JWT` with the default profile.
  auth0: { claims: { scopes: ['scope', 'permissions'], subject: 'sub', client: ['client_id', 'azp'] }, typ: ['at+jwt', 'JWT'] },
  // Okta custom authorization servers: `scp` array, client in `cid`, no typ header.
  okta: { claims: { scopes: ['scp'], subject: 'sub', client: ['cid'] }, typ: ['at+jwt', 'JWT', 'absent'] },
  // Microsoft Entra ID: delegated `scp` (space-separated), application `roles`; v2 `azp`, v1
  // `appid`; Microsoft keys users by `oid` (stable across applications; `sub` is pairwise).
  entra: { claims: { scopes: ['scp', 'roles'], subject: 'oid', client: ['azp', 'appid'] }, typ: ['JWT'] },
  // Keycloak: `scope` string (client scopes); realm roles are opt-in via claims.scopes.
  // Its ID tokens share the header typ, so the payload's own `typ: Bearer` tells access tokens apart.
  keycloak: { claims: { scopes: ['scope'], subject: 'sub', client: ['azp', 'client_id'] }, typ: ['JWT', 'at+jwt'], requireClaims: { typ: 'Bearer' } },
  // FusionAuth: `scope` and application `roles`; the client is `applicationId`.
  fusionauth: { claims: { scopes: ['scope', 'roles'], subject: 'sub', client: ['applicationId', 'client_id'] }, typ: ['JWT', 'at+jwt'] },
  // WSO2 Identity Server and Asgardeo: RFC 9068-style `scope` and `client_id`.
  wso2: { claims: { scopes: ['scope'], subject: 'sub', client: ['client_id', 'azp'] }, typ: ['at+jwt', 'JWT'] },
  // Google issues opaque access tokens; what it signs are ID tokens, which Google recommends for
  // service-to-service calls with `aud` set to the receiving service's URL. They carry no scopes,
  // and any Google account can mint one for any audience, so the loader insists on requireClaims.
  google: { claims: { scopes: [], subject: 'sub', client: ['azp'] }, typ: ['JWT'] },
};
