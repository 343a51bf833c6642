/** Who a verified access token speaks for, and what it may do. */
export interface Principal {
  readonly issuer: string;
  readonly subject: string;
  /** The OAuth client (agent) the token was issued to, when the token says. */
  readonly clientId: string | undefined;
  readonly scopes: ReadonlySet<string>;
  /** Seconds since the epoch. */
  readonly expiresAt: number;
}

/** Stable identity used to bind sessions: the same subject at another issuer is someone else. */
export function principalKey(principal: Pick<Principal, 'issuer' | 'subject'>): string {
  return JSON.stringify([principal.issuer, principal.subject]);
}

/**
 * Scopes from the token: RFC 9068 §2.2.3 `scope` (space-separated), or `scp`, which several
 * IdPs use as a string or an array.
 */
export function scopesFromClaims(claims: Record<string, unknown>): Set<string> {
  const scopes = new Set<string>();
  for (const claim of [claims.scope, claims.scp]) {
    if (typeof claim === 'string') for (const s of claim.split(' ')) s && scopes.add(s);
    else if (Array.isArray(claim)) for (const s of claim) typeof s === 'string' && s && scopes.add(s);
  }
  return scopes;
}

export function clientIdFromClaims(claims: Record<string, unknown>): string | undefined {
  // RFC 9068 §2.2 client_id; OIDC's azp where an IdP uses that instead.
  for (const claim of [claims.client_id, claims.azp]) if (typeof claim === 'string' && claim) return claim;
  return undefined;
}
