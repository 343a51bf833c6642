import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import type { IssuerConfig } from '../config/types.js';
import { PRM_WELL_KNOWN, type RouteRuntime } from './routes.js';

/** RFC 9728 §2 Protected Resource Metadata for one route, built once at startup. */
export function protectedResourceMetadata(route: RouteRuntime, issuers: readonly IssuerConfig[]): object {
  return {
    resource: route.resource,
    authorization_servers: issuers.map((i) => i.issuer),
    scopes_supported: route.config.policy.scopesSupported,
    bearer_methods_supported: ['header'],
    resource_name: route.config.name,
  };
}

// Metadata is public and read by browser-based clients, which send MCP-Protocol-Version.
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': 'Authorization, Content-Type, MCP-Protocol-Version',
  'access-control-max-age': '86400',
};

/**
 * Serves each route's metadata at its path-inserted well-known URL, and at the root well-known
 * URL when there is exactly one route (RFC 9728 §3.1; MCP authorization §Protected Resource
 * Metadata Discovery Requirements: clients try the path-inserted form, then the root).
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
