import { Refusal } from '../errors.js';
import type { ClaimMapping, RequiredClaimValue } from '../config/types.js';

export type { ClaimMapping };

/**
 * Where an issuer's access tokens keep the principal: which claims carry scopes, subject and
 * client. IdPs disagree (RFC 9068 `scope`, Okta and Entra `scp`, Auth0 `permissions`, Keycloak
 * `realm_access.roles`, Entra `appid`, Okta `cid`), so each issuer names its own; presets.ts
 * holds the mappings for well-known IdPs.
 */
/**
 * A claim by name, or by dot path into nested objects (`realm_access.roles`). The exact name is
 * tried first, so namespaced claims that contain dots (`https://example.com/roles`) still work.
 */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let value: unknown = claims;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

export function scopesFromClaims(claims: Readonly<Record<string, unknown>>, mapping: Pick<ClaimMapping, 'scopes' | 'scopePrefix'>): Set<string> {
  const scopes = new Set<string>();
  const add = (scope: unknown) => {
    if (typeof scope !== 'string' || scope === '') return;
    // With a prefix, only scopes carrying it count: an unprefixed `admin` (another API's, or an
    // app role) must not pass for `api://mcp/admin`.
    if (mapping.scopePrefix !== undefined && !scope.startsWith(mapping.scopePrefix)) return;
    const stripped = mapping.scopePrefix ? scope.slice(mapping.scopePrefix.length) : scope;
    if (stripped !== '') scopes.add(stripped);
  };
  for (const path of mapping.scopes) {
    const value = claimAt(claims, path);
    if (typeof value === 'string') value.split(' ').forEach(add);
    else if (Array.isArray(value)) value.forEach(add);
  }
  return scopes;
}

export function stringClaim(claims: Readonly<Record<string, unknown>>, paths: readonly string[]): string | undefined {
  for (const path of paths) {
    const value = claimAt(claims, path);
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

/** RFC 7515 §4.1.9: typ is compared case-insensitively, and `application/` may be omitted. */
export function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

/**
 * RFC 9449 §6 / RFC 7800: the JWK thumbprint a token is bound to, from `cnf.jkt` (JWT claim or
 * introspection member). A `cnf` binding the gateway cannot check (RFC 8705 `x5t#S256`, or a
 * malformed `jkt`) refuses the token: treating it as unbound would let a stolen token replay.
 */
export function confirmationJkt(claims: Readonly<Record<string, unknown>>): string | undefined {
  const cnf = claimAt(claims, 'cnf');
  if (cnf === undefined) return undefined;
  const jkt = claimAt(claims, 'cnf.jkt');
  const members = cnf !== null && typeof cnf === 'object' && !Array.isArray(cnf) ? Object.keys(cnf) : [];
  if (typeof jkt !== 'string' || jkt === '' || members.length !== 1) {
    throw new Refusal('invalid_token', 'The access token is bound by a confirmation method this resource cannot check', { tokenFailure: 'binding' });
  }
  return jkt;
}

/** Whether the claims carry every required claim with an allowed value (arrays: any element). */
export function hasRequiredClaims(claims: Readonly<Record<string, unknown>>, required: Readonly<Record<string, RequiredClaimValue>>): boolean {
  return Object.entries(required).every(([path, allowed]) => {
    const values = ([] as unknown[]).concat(claimAt(claims, path));
    const accepted = ([] as unknown[]).concat(allowed);
    return values.some((value) => accepted.includes(value));
  });
}
