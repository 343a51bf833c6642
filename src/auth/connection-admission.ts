import type { VerifiedToken, VerifiedTokenCache } from './token-cache.js';

/**
 * What a connection's last request was admitted with. A client sends the same Authorization
 * header on every request of a keep-alive connection; comparing the header with the last one
 * spares parsing it, hashing the token and the cache look-up, which together were the largest
 * cost of admitting a request (docs/performance.md).
 *
 * Kept per connection (a weak map: the entry goes with the socket): only the same header on the same connection
 * matches (a proxy multiplexing several users over one connection just misses), and the token is
 * held no longer than the client keeps that connection open. Nothing is skipped that could have
 * another outcome: the entry is the token cache's own (its exp and maximum age still apply), it
 * names the route and the cache, and a reload makes a new cache (issuer trust and DPoP settings
 * can only change with one). DPoP-bound tokens are never remembered: each request needs its proof.
 */
interface Admission {
  readonly authorization: string;
  readonly route: string;
  readonly cache: VerifiedTokenCache;
  readonly verified: VerifiedToken;
}

/** What each open connection was last admitted with; an entry goes with its connection. */
const admissions = new WeakMap<Connection, Admission>();

/** A request's connection (its socket); any object works. */
export type Connection = object;

/** The token the connection's last request was admitted with, if this request presents the same, for the same route, and it is still good. */
export function admittedBefore(connection: Connection, authorization: string | undefined, route: string, cache: VerifiedTokenCache): VerifiedToken | undefined {
  const admission = admissions.get(connection);
  if (admission === undefined || admission.authorization !== authorization || admission.route !== route || admission.cache !== cache) return undefined;
  return cache.isCurrent(admission.verified) ? admission.verified : undefined;
}

export function rememberAdmission(connection: Connection, authorization: string, route: string, cache: VerifiedTokenCache, verified: VerifiedToken): void {
  admissions.set(connection, { authorization, route, cache, verified });
}

/** Drops what the connection remembers (a long-lived stream must not keep its token: see forgetCredentials). */
export function forgetAdmission(connection: Connection): void {
  admissions.delete(connection);
}
