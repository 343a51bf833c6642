import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { ServerResponse } from 'node:http';
import { Hono } from 'hono';
import { mountAuthorizationServer } from '../authorization-server/routes.js';
import type { AuthorizationServer } from '../authorization-server/service.js';
import type { GatewayConfig, IssuerConfig } from '../config/types.js';
import { JSONRPC_INTERNAL_ERROR } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { withRequestId } from './gateway-response.js';
import { mcpEndpoint, type McpEndpointDeps, type McpHandler } from './pipeline/endpoint.js';
import { mountAuthorizationServerMetadata } from './as-metadata.js';
import { mountProtectedResourceMetadata } from './metadata.js';
import { IDENTITY_JWKS_PATH } from '../proxy/identity.js';
import { readiness, type ReadinessSources } from './readiness.js';
import type { RouteRuntime } from './routes.js';

export interface HttpApp {
  readonly hono: Hono<{ Bindings: HttpBindings }>;
  /**
   * The MCP endpoints by exact path, for the listener to call without the router: every MCP
   * request pays for routing otherwise, and these paths are known. Hono serves the same handlers
   * for whatever else reaches an MCP route (a percent-encoded spelling of the path, say).
   */
  readonly mcpRoutes: ReadonlyMap<string, McpHandler>;
}

const INTERNAL_ERROR_BODY = JSON.stringify({ jsonrpc: '2.0', error: { code: JSONRPC_INTERNAL_ERROR, message: 'Internal error' } });

/**
 * The HTTP surface: liveness, readiness, RFC 9728 metadata, and one MCP endpoint per route. Routes match
 * the exact path only (no trailing-slash or prefix matches), and nothing else is served.
 */
export function buildApp(
  config: GatewayConfig,
  routes: readonly RouteRuntime[],
  /** Every trusted issuer, the gateway's own authorization server included (routes' metadata names them). */
  issuers: readonly IssuerConfig[],
  authorizationServer: AuthorizationServer | undefined,
  deps: McpEndpointDeps & ReadinessSources,
): HttpApp {
  const app = new Hono<{ Bindings: HttpBindings }>({ strict: true });
  app.get('/healthz', () => Response.json({ status: 'ok' }));
  app.get('/readyz', () => readiness(deps));
  // Public keys only: upstreams verify the identity tokens the gateway signs (routes[].identityHeaders.token).
  const signer = deps.identitySigner;
  if (signer) app.get(IDENTITY_JWKS_PATH, () => Response.json(signer.jwks, { headers: { 'cache-control': 'max-age=300' } }));
  mountProtectedResourceMetadata(app, routes, issuers);
  if (authorizationServer) mountAuthorizationServer(app, authorizationServer);
  if (config.authorizationServerMetadata) {
    mountAuthorizationServerMetadata(app, config.authorizationServerMetadata, config.issuerDiscoveryTimeoutMs, deps.logger);
  }
  const mcpRoutes = new Map<string, McpHandler>();
  for (const route of routes) {
    const handler = mcpEndpoint(route, deps);
    mcpRoutes.set(route.config.path, handler);
    app.all(route.config.path, async (c) => {
      await handler(c.env.incoming, c.env.outgoing);
      return RESPONSE_ALREADY_SENT;
    });
  }
  app.notFound(() => Response.json({ error: 'not_found' }, { status: 404 }));
  // Every internal error is answered in one place, whichever way the request was routed.
  app.onError((error, c) => {
    answerInternalError(deps.logger, c.env.outgoing, error);
    return RESPONSE_ALREADY_SENT;
  });
  return { hono: app, mcpRoutes };
}

/** The path of a request target, without its query. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * The one place an internal error (a bug, never a refusal) is answered: logged, then a 500 with
 * a JSON-RPC error, or the response cut if an answer had already begun. The listener sends MCP
 * requests' errors here, and Hono's onError everything else's.
 */
export function answerInternalError(logger: Logger, res: ServerResponse, error: unknown): void {
  logger.error({ err: error }, 'unhandled error');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(500, withRequestId(res, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(INTERNAL_ERROR_BODY)) })).end(INTERNAL_ERROR_BODY);
}
