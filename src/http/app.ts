import type { HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import type { GatewayConfig } from '../config/types.js';
import { JSONRPC_INTERNAL_ERROR } from '../errors.js';
import { mcpEndpoint, type McpEndpointDeps } from './mcp-endpoint.js';
import { mountAuthorizationServerMetadata } from './as-metadata.js';
import { mountProtectedResourceMetadata } from './metadata.js';
import { IDENTITY_JWKS_PATH } from '../proxy/identity.js';
import { readiness, type ReadinessSources } from './readiness.js';
import type { RouteRuntime } from './routes.js';

/**
 * The HTTP surface: liveness, readiness, RFC 9728 metadata, and one MCP endpoint per route. Routes match
 * the exact path only (no trailing-slash or prefix matches), and nothing else is served.
 */
export function buildApp(config: GatewayConfig, routes: readonly RouteRuntime[], deps: McpEndpointDeps & ReadinessSources): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>({ strict: true });
  app.get('/healthz', () => Response.json({ status: 'ok' }));
  app.get('/readyz', () => readiness(deps));
  // Public keys only: upstreams verify the identity tokens the gateway signs (routes[].identityHeaders.token).
  const signer = deps.identitySigner;
  if (signer) app.get(IDENTITY_JWKS_PATH, () => Response.json(signer.jwks, { headers: { 'cache-control': 'max-age=300' } }));
  mountProtectedResourceMetadata(app, routes, config.issuers);
  if (config.authorizationServerMetadata) {
    mountAuthorizationServerMetadata(app, config.authorizationServerMetadata, config.issuerDiscoveryTimeoutMs, deps.logger);
  }
  for (const route of routes) app.all(route.config.path, mcpEndpoint(route, deps));
  app.notFound(() => Response.json({ error: 'not_found' }, { status: 404 }));
  app.onError((error) => {
    deps.logger.error({ err: error }, 'unhandled error');
    return Response.json({ jsonrpc: '2.0', error: { code: JSONRPC_INTERNAL_ERROR, message: 'Internal error' } }, { status: 500 });
  });
  return app;
}
