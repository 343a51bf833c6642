import { extractBearerToken } from './bearer.js';
import type { IssuerDirectory } from './issuers.js';
import type { Principal } from './principal.js';
import type { VerifiedTokenCache } from './token-cache.js';
import { unverifiedIssuer, verifyJwtAccessToken } from './verify-jwt.js';

export interface AuthRoute {
  readonly name: string;
  /** The route's resource URL (publicUrl + path): the audience its tokens must carry. */
  readonly resource: string;
}

/** Authorization header → verified principal for a route, or a thrown Refusal. */
export class Authenticator {
  constructor(
    private readonly issuers: IssuerDirectory,
    private readonly cache: VerifiedTokenCache,
  ) {}

  async authenticate(authorization: string | undefined, route: AuthRoute): Promise<Principal> {
    const token = extractBearerToken(authorization);
    const cached = this.cache.get(route.name, token);
    if (cached) return cached;
    const issuer = this.issuers.trusted(unverifiedIssuer(token), route.name);
    const principal = await verifyJwtAccessToken(token, issuer, route.resource);
    this.cache.set(route.name, token, principal);
    return principal;
  }
}
