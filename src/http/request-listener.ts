import type { IncomingMessage } from 'node:http';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import { logAccess } from '../observability/access-log.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { beginRequest } from '../observability/request-record.js';
import { answerInternalError, pathOf, type HttpApp } from './app.js';
import type { ForwardedHeaders } from './forwarded.js';
import type { GatewayResponse } from './gateway-response.js';
import type { Lifecycle } from './lifecycle.js';

export interface RequestListenerDeps {
  readonly lifecycle: Lifecycle;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly forwarded: ForwardedHeaders;
  /** The HTTP app of the config in force: a reload swaps it, requests in flight keep theirs. */
  readonly app: () => HttpApp;
}

/**
 * What the main listener does with every request: count it in flight, start its record (the
 * access line and metrics come when its response closes), then hand it to its MCP route
 * directly, or to the Hono app for everything else (metadata, health, a route's path spelled
 * another way). A bug in an MCP route is answered as an internal error.
 */
export function requestListener({ lifecycle, logger, metrics, forwarded, app }: RequestListenerDeps): (req: IncomingMessage, res: GatewayResponse) => void {
  const serveApp = getRequestListener((request, env) => app().hono.fetch(request, env as HttpBindings), { overrideGlobalObjects: false });
  // One listener for every response, not a closure per request: an open stream would keep its
  // closure (and the scope it was made in) alive for as long as it stays open.
  function responseClosed(this: GatewayResponse): void {
    // Once per request, though an interrupted response (Gateway.interrupt) closes twice.
    if (!lifecycle.requestFinished(this)) return;
    const record = this.record!;
    record.trace?.finish(this.statusCode, !this.writableFinished);
    logAccess(logger, this.req, this, record);
    metrics.request(record.route ?? '', this.req.method ?? '', this.statusCode);
  }
  return (req, res) => {
    // The proxy, Hono, the lifecycle, the access log and a stream's gate each watch 'close':
    // more than Node's default of 10 on a streamed answer, which is no leak.
    res.setMaxListeners(32);
    lifecycle.requestStarted(res);
    const record = (res.record = beginRequest(req.headers, forwarded.originOf(req)));
    // 'close' comes once: on() spares the wrapper once() would make.
    res.on('close', responseClosed);
    const mcp = app().mcpRoutes.get(pathOf(req.url));
    if (mcp) {
      // MCP routes write X-Request-Id with their one writeHead (withRequestId).
      try {
        mcp(req, res)?.catch((error: unknown) => answerInternalError(logger, res, error));
      } catch (error) {
        answerInternalError(logger, res, error);
      }
      return;
    }
    res.setHeader('x-request-id', record.id);
    void serveApp(req, res);
  };
}
