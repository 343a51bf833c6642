import { extractBearerToken } from './bearer.js';
import type { IssuerDirectory } from './issuers.js';
import type { Principal } from './principal.js';
import { unverifiedIssuer, verifyJwtAccessToken } from './verify-jwt.js';

/** Authorization header → verified principal for a route's `resource`, or a thrown Refusal. */
export async function authenticate(issuers: IssuerDirectory, authorization: string | undefined, route: { name: string; resource: string }): Promise<Principal> {
  const { resource } = route;
  const token = extractBearerToken(authorization);
  const issuer = issuers.trusted(unverifiedIssuer(token), route.name);
  return verifyJwtAccessToken(token, issuer, resource);
}
