import type { IssuerConfig } from '../config/types.js';
import { Refusal } from '../errors.js';
import { audienceIncludes } from './audience.js';
import { confirmationJkt, hasRequiredClaims, scopesFromClaims, stringClaim } from './claims.js';

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
  /** The verified claims (JWT payload or introspection answer), for policy conditions; never logged. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Stable identity used to bind sessions: the same subject at another issuer is someone else. */
export function principalKey(principal: Pick<Principal, 'issuer' | 'subject'>): string {
  // A cached token's principal is the same object on every request: its key is made once.
  let key = principalKeys.get(principal);
  if (key === undefined) principalKeys.set(principal, (key = JSON.stringify([principal.issuer, principal.subject])));
  return key;
}

const principalKeys = new WeakMap<object, string>();

/**
 * The principal a verified token's claims name, shared by the JWT and introspection paths so
 * they cannot drift: the checks every token passes whatever its form (audience, required claims,
 * a subject, a checkable confirmation) and the issuer's claim mapping.
 */
export function principalFromClaims(
  claims: Readonly<Record<string, unknown>>,
  issuer: Pick<IssuerConfig, 'issuer' | 'audiences' | 'requireClaims' | 'claims'>,
  resource: string,
  expiresAt: number,
): Principal {
  const audiences = issuer.audiences ?? [resource];
  if (!audiences.some((audience) => audienceIncludes(claims.aud, audience))) throw new Refusal('invalid_token', 'The access token is not for this resource', { tokenFailure: 'audience' });
  if (!hasRequiredClaims(claims, issuer.requireClaims)) throw new Refusal('invalid_token', 'The access token lacks a claim this resource requires', { tokenFailure: 'claims' });
  const subject = stringClaim(claims, [issuer.claims.subject]);
  if (subject === undefined) throw new Refusal('invalid_token', 'The access token names no subject', { tokenFailure: 'claims' });
  const jkt = confirmationJkt(claims);
  return {
    issuer: issuer.issuer,
    subject,
    clientId: stringClaim(claims, issuer.claims.client),
    scopes: scopesFromClaims(claims, issuer.claims),
    expiresAt,
    ...(jkt === undefined ? {} : { confirmationJkt: jkt }),
    claims,
  };
}
