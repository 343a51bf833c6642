/** Who a verified access token speaks for, and what it may do. */
export interface Principal {
  readonly issuer: string;
  readonly subject: string;
  /** The OAuth client (agent) the token was issued to, when the token says. */
  readonly clientId: string | undefined;
  readonly scopes: ReadonlySet<string>;
  /** Seconds since the epoch. */
  readonly expiresAt: number;
  /** RFC 9449 §6.1 `cnf.jkt`: the token is DPoP-bound to the key with this thumbprint. */
  readonly confirmationJkt?: string;
}

/** Stable identity used to bind sessions: the same subject at another issuer is someone else. */
export function principalKey(principal: Pick<Principal, 'issuer' | 'subject'>): string {
  return JSON.stringify([principal.issuer, principal.subject]);
}
