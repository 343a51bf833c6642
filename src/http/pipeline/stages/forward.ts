import type { IncomingMessage } from 'node:http';
import { forgetCredentials } from '../../../auth/forget-credentials.js';
import type { Principal } from '../../../auth/principal.js';
import type { RequestRecord } from '../../../observability/request-record.js';
import { identityHeadersFor, type IdentitySigner } from '../../../proxy/identity.js';
import type { RouteRuntime } from '../../routes.js';
import { auditExchange } from '../audit.js';
import type { McpExchange } from '../exchange.js';
import type { RouteServices } from '../route-services.js';
import type { Stage } from '../stage.js';

/**
 * The checked request goes upstream: the same bytes, the headers the route allows, and the
 * gateway's own (request id, where the request came from, and the route's identity headers);
 * never the client's token (MCP authorization §Access Token Privilege Restriction). Resolves once
 * the upstream's head has arrived, before anything is written to the client; its decisions are
 * audited with the upstream's status.
 */
export function forwardStage(services: RouteServices): Stage {
  const { route, deps } = services;
  return function forward(exchange) {
    // Identity tokens may need signing (async); most routes send none and skip the wait.
    if (!route.hasIdentityHeaders) return send(services, exchange, gatewayHeaders(exchange.record));
    return withIdentityHeaders(route, exchange.admitted, exchange.record, deps.identitySigner).then((headers) => send(services, exchange, headers));
  };
}

function send(services: RouteServices, exchange: McpExchange, headers: Record<string, string>): Promise<void> {
  const { route, deps, name } = services;
  // Traced: the upstream continues the gateway's trace (W3C traceparent), not the client's.
  if (exchange.trace) deps.tracing?.inject(exchange.trace.currentContext(), headers);
  const forwardedAt = performance.now();
  return deps.forwarder
    .forward(exchange.incoming, exchange.outgoing, {
      target: route.config.upstream,
      forwardHeaders: route.forwardHeaders,
      body: exchange.bytes,
      responseTimeoutMs: deps.upstreamResponseTimeoutMs,
      connectTimeoutMs: deps.upstreamConnectTimeoutMs,
      gatewayHeaders: headers,
    })
    .then((upstream: IncomingMessage) => {
      exchange.upstream = upstream;
      // A stream may outlive the token by far in memory terms: nothing after this needs it.
      if (exchange.longLived) forgetCredentials(exchange.incoming);
      const upstreamSeconds = (performance.now() - forwardedAt) / 1000;
      deps.metrics.upstreamResponded(name, upstreamSeconds);
      const upstreamStatus = upstream.statusCode ?? 502;
      if (upstreamStatus >= 500) deps.metrics.upstreamFailed(name, 'server-error');
      auditExchange(services, exchange, { status: upstreamStatus, upstreamStatus, upstreamMs: Math.round(upstreamSeconds * 10_000) / 10 });
    });
}

/**
 * What the gateway itself tells the upstream: the request id and where the request came from
 * (as far as trusted proxies vouch for it). These win over any client-sent header of the same
 * name, which is never forwarded.
 */
function gatewayHeaders(record: RequestRecord | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (record) {
    headers['x-request-id'] = record.id;
    const { forwardedFor, proto, host } = record.origin;
    if (forwardedFor !== undefined) headers['x-forwarded-for'] = forwardedFor;
    headers['x-forwarded-proto'] = proto;
    if (host !== undefined) headers['x-forwarded-host'] = host;
  }
  return headers;
}

/** The gateway's headers plus, on routes that ask (routes[].identityHeaders), who is calling. */
async function withIdentityHeaders(route: RouteRuntime, principal: Principal, record: RequestRecord | undefined, signer: IdentitySigner | undefined): Promise<Record<string, string>> {
  return Object.assign(gatewayHeaders(record), await identityHeadersFor(route.config.identityHeaders, principal, route.config.upstream, signer));
}
