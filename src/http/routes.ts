import type { IssuerConfig, RouteConfig } from '../config/types.js';
import { FORWARDED_REQUEST_HEADERS } from '../proxy/headers.js';

/** A configured route with the URLs derived from publicUrl, computed once at startup. */
export interface RouteRuntime {
  readonly config: RouteConfig;
  /** RFC 8707 resource indicator: publicUrl + path. Tokens must be issued for exactly this. */
  readonly resource: string;
  /** RFC 9728 §3.1 path-inserted well-known URL of this route's metadata. */
  readonly metadataPath: string;
  readonly resourceMetadataUrl: string;
  /** Request headers passed upstream: the MCP ones plus the route's `forwardHeaders`. */
  readonly forwardHeaders: ReadonlySet<string>;
  /** Some issuer this route trusts requires DPoP, so its challenges offer DPoP too. */
  readonly requiresDpop: boolean;
  /** The route sends identity headers upstream (routes[].identityHeaders). */
  readonly hasIdentityHeaders: boolean;
}

export const PRM_WELL_KNOWN = '/.well-known/oauth-protected-resource';

export function routeRuntime(config: RouteConfig, publicUrl: string, issuers: readonly IssuerConfig[]): RouteRuntime {
  const metadataPath = `${PRM_WELL_KNOWN}${config.path === '/' ? '' : config.path}`;
  return {
    config,
    resource: `${publicUrl}${config.path}`,
    metadataPath,
    resourceMetadataUrl: `${publicUrl}${metadataPath}`,
    forwardHeaders: new Set([...FORWARDED_REQUEST_HEADERS, ...config.forwardHeaders]),
    hasIdentityHeaders: Object.keys(config.identityHeaders).length > 0,
    requiresDpop: issuers.some((issuer) => issuer.dpop === 'required' && (issuer.routes === undefined || issuer.routes.includes(config.name))),
  };
}
