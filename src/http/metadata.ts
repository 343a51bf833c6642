import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import type { IssuerConfig } from '../config/types.js';
import { PRM_WELL_KNOWN, type RouteRuntime } from './routes.js';

/** RFC 9728 §2 Protected Resource Metadata for one route, built once at startup. */
export function protectedResourceMetadata(route: RouteRuntime, issuers: readonly IssuerConfig[]): object {
  const scopes = route.config.policy.scopesSupported;
  return {
    resource: route.resource,
    authorization_servers: issuers.filter((i) => i.routes === undefined || i.routes.includes(route.config.name)).map((i) => i.issuer),
    // RFC 9728 §3.2: parameters with zero values MUST be omitted.
    ...(scopes.length > 0 ? { scopes_supported: scopes } : {}),
    bearer_methods_supported: ['header'],
    resource_name: route.config.name,
  };
}

// Metadata is public and read by browser-based clients, which send MCP-Protocol-Version.
export const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': 'Authorization, Content-Type, MCP-Protocol-Version',
  'access-control-max-age': '86400',
};

/**
 * Serves each route's metadata at its path-inserted well-known URL (RFC 9728 §3.1), and at the
 * root well-known URL when there is exactly one route: MCP clients fall back to the root form
 * (MCP authorization 2025-11-25 §Protected Resource Metadata Discovery Requirements; 2025-06-18
 * §Authorization Server Location), though RFC 9728 §3.3 alone would not have it there.
 */
export function mountProtectedResourceMetadata(app: Hono<{ Bindings: HttpBindings }>, routes: readonly RouteRuntime[], issuers: readonly IssuerConfig[]): void {
  const documents = new Map<string, string>();
  for (const route of routes) documents.set(route.metadataPath, JSON.stringify(protectedResourceMetadata(route, issuers)));
  if (routes.length === 1 && !documents.has(PRM_WELL_KNOWN)) {
    documents.set(PRM_WELL_KNOWN, documents.get(routes[0]!.metadataPath)!);
  }
  for (const [path, body] of documents) {
    app.on(['GET', 'HEAD'], path, () =>
      new Response(body, { headers: { ...CORS_HEADERS, 'content-type': 'application/json', 'cache-control': 'public, max-age=300' } }),
    );
    app.options(path, () => new Response(null, { status: 204, headers: CORS_HEADERS }));
    app.all(path, () => new Response(null, { status: 405, headers: { ...CORS_HEADERS, allow: 'GET, HEAD, OPTIONS' } }));
  }
}
