import { hasRequiredClaims } from '../auth/claims.js';
import type { ScopeGrant } from '../config/types.js';

/** Who logged in at the IdP, as the grants see them. */
export interface IdpUser {
  /** The IdP's own subject (its subjectClaim's value). */
  readonly subject: string;
  /** ID token and userinfo claims (GitHub: its user API's fields). */
  readonly claims: Readonly<Record<string, unknown>>;
}

/**
 * Every scope `grants` allows this user (authorizationServer.grants): an entry's scopes when its
 * `when` holds (every part given: claims with the policy's matching rules, the IdP subject), or
 * always without one. Pure: the same user always gets the same answer.
 */
export function grantableScopes(grants: readonly ScopeGrant[], user: IdpUser): Set<string> {
  const scopes = new Set<string>();
  for (const grant of grants) {
    const when = grant.when;
    if (when?.subjects !== undefined && !when.subjects.includes(user.subject)) continue;
    if (when?.claims !== undefined && !hasRequiredClaims(user.claims, when.claims)) continue;
    for (const scope of grant.scopes) scopes.add(scope);
  }
  return scopes;
}

/**
 * The scopes an authorization grants: what the client asks for now, plus what this user already
 * granted this client (step-up adds scopes, never loses held ones: MCP authorization 2025-11-25
 * §Scope Challenge Handling, whose client asks only for the missing ones), all within what the
 * user may hold. RFC 6749 §3.3: the server may grant less than asked; the token response then
 * names what was granted. Order: as asked, then the earlier ones.
 */
export function scopesToGrant(requested: readonly string[], previouslyGranted: readonly string[], grantable: ReadonlySet<string>): string[] {
  return [...new Set([...requested, ...previouslyGranted])].filter((scope) => grantable.has(scope));
}

/** Whether a remembered approval covers these scopes, so the consent page may be skipped. */
export function consentCovers(approved: readonly string[] | undefined, scopes: readonly string[]): boolean {
  return approved !== undefined && scopes.every((scope) => approved.includes(scope));
}

/** RFC 6749 §3.3: scope is a space-separated list; empty entries (double spaces) are not scopes. */
export function parseScope(scope: string | undefined): string[] {
  return scope === undefined ? [] : [...new Set(scope.split(' ').filter((s) => s !== ''))];
}
