import { decodeProtectedHeader } from 'jose';
import { Refusal } from '../errors.js';
import { extractBearerToken } from './bearer.js';
import { principalFromIntrospection, type Introspector } from './introspection.js';
import type { IssuerDirectory } from './issuers.js';
import type { Principal } from './principal.js';
import type { VerifiedTokenCache } from './token-cache.js';
import { unverifiedIssuer, verifyJwtAccessToken } from './verify-jwt.js';

export interface AuthRoute {
  readonly name: string;
  /** The route's resource URL (publicUrl + path): the audience its tokens must carry. */
  readonly resource: string;
}

/**
 * Authorization header → verified principal for a route, or a thrown Refusal. A JWT is
 * verified locally against its issuer's keys; any other token is opaque and goes to the one
 * issuer trusted by the route that introspects (RFC 7662), never to any other IdP.
 */
export class Authenticator {
  constructor(
    private readonly issuers: IssuerDirectory,
    private readonly cache: VerifiedTokenCache,
    private readonly introspectors: readonly Introspector[] = [],
  ) {}

  async authenticate(authorization: string | undefined, route: AuthRoute): Promise<Principal> {
    const token = extractBearerToken(authorization);
    const cached = this.cache.get(route.name, token);
    if (cached) return cached;
    if (!isJws(token)) return this.introspect(token, route); // cached in the store, with its own TTL cap
    const principal = await this.verifyJwt(token, route);
    this.cache.set(route.name, token, principal);
    return principal;
  }

  private verifyJwt(token: string, route: AuthRoute): Promise<Principal> {
    return verifyJwtAccessToken(token, this.issuers.trusted(unverifiedIssuer(token), route.name), route.resource);
  }

  private async introspect(token: string, route: AuthRoute): Promise<Principal> {
    const introspector = this.introspectors.find(({ issuer }) => issuer.routes === undefined || issuer.routes.includes(route.name));
    if (!introspector) throw new Refusal('invalid_token', 'The access token is malformed');
    const response = await introspector.introspect(token);
    return principalFromIntrospection(response, introspector.issuer, route.resource, Math.floor(Date.now() / 1000), introspector.fallbackTtlSeconds);
  }
}

/** A compact JWS (three segments, a JSON header): verified locally. Anything else is opaque. */
function isJws(token: string): boolean {
  if (token.split('.').length !== 3) return false;
  try {
    decodeProtectedHeader(token);
    return true;
  } catch {
    return false;
  }
}
