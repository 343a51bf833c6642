import type { IncomingMessage } from 'node:http';
import { forgetCredentials } from '../../../auth/forget-credentials.js';
import type { Principal } from '../../../auth/principal.js';
import type { RequestRecord } from '../../../observability/request-record.js';
import { identityHeadersFor, type IdentitySigner } from '../../../proxy/identity.js';
import { credentialRenewed } from '../../../upstream-auth/refusals.js';
import type { RouteRuntime } from '../../routes.js';
import { auditExchange } from '../audit.js';
import type { McpExchange } from '../exchange.js';
import type { RouteServices } from '../route-services.js';
import type { Stage } from '../stage.js';

/**
 * The checked request goes upstream: the same bytes, the headers the route allows, and the
 * gateway's own (request id, where the request came from, the route's identity headers and its
 * upstream credential); never the client's token (MCP authorization §Access Token Privilege
 * Restriction). Resolves once the upstream's head has arrived, before anything is written to the
 * client; its decisions are audited with the upstream's status.
 */
export function forwardStage(services: RouteServices): Stage {
  const { route, deps } = services;
  return function forward(exchange) {
    // Identity tokens may need signing (async); most routes send none and skip the wait.
    if (!route.hasIdentityHeaders) return send(services, exchange, withCredential(services, exchange, gatewayHeaders(exchange.record)), false);
    return withIdentityHeaders(route, exchange.admitted, exchange.record, deps.identitySigner).then((headers) => send(services, exchange, withCredential(services, exchange, headers), false));
  };
}

/** routes[].upstreamAuth: the credential found for this principal, in its header (a client's copy never passes). */
function withCredential({ upstreamAuth }: RouteServices, exchange: McpExchange, headers: Record<string, string>): Record<string, string> {
  if (upstreamAuth && exchange.upstreamCredential !== undefined) headers[upstreamAuth.header] = exchange.upstreamCredential;
  return headers;
}

function send(services: RouteServices, exchange: McpExchange, headers: Record<string, string>, resent: boolean): Promise<void> {
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
      // Any other version's Mcp-Param-* headers were dropped by the session stage.
      paramHeaders: exchange.stateless,
    })
    .then((upstream: IncomingMessage) => {
      const upstreamSeconds = (performance.now() - forwardedAt) / 1000;
      deps.metrics.upstreamResponded(name, upstreamSeconds);
      // With upstreamAuth, a 401 is about the gateway's credential: the upstream never saw the client's token.
      if (upstream.statusCode === 401 && services.upstreamAuth) return credentialRefused(services, exchange, headers, upstream, resent);
      exchange.upstream = upstream;
      // A stream may outlive the token by far in memory terms: nothing after this needs it.
      if (exchange.longLived) forgetCredentials(exchange.incoming);
      const upstreamStatus = upstream.statusCode ?? 502;
      if (upstreamStatus >= 500) deps.metrics.upstreamFailed(name, 'server-error');
      auditExchange(services, exchange, { status: upstreamStatus, upstreamStatus, upstreamMs: Math.round(upstreamSeconds * 10_000) / 10 });
    });
}

/**
 * The upstream refused the credential (an expired or revoked token, a rotated secret): it is
 * forgotten, a fresh one obtained once and the request sent once more, with the same bytes. Only
 * where re-sending is safe: a POST whose body the gateway holds, not a stream's subscription,
 * before any byte reached the client. Refused again, the client is told (401 for an exchanged
 * token, 502 for a static secret); a request not re-sent is answered 503 (retry: the next
 * attempt gets the fresh credential). The refused answer itself is never relayed. A user's own
 * token (idpToken, connectedAccount) refused even renewed is dropped, so the user acts again.
 */
function credentialRefused(services: RouteServices, exchange: McpExchange, headers: Record<string, string>, refusedAnswer: IncomingMessage, resent: boolean): Promise<void> {
  const source = services.upstreamAuth!;
  // A small answer is read off, so its connection can serve the next request; anything else
  // (a stream, an answer of unknown length) is cut rather than read for as long as it lasts.
  if (Number(refusedAnswer.headers['content-length'] ?? Infinity) <= 65_536) refusedAnswer.resume();
  else refusedAnswer.destroy();
  const forgotten = source.forget(exchange.admitted, exchange.upstreamCredential!);
  if (resent) return forgotten.then(() => source.refusedAgain(exchange.admitted)).then((refusal) => Promise.reject(refusal));
  if (!resendable(exchange)) return forgotten.then(() => Promise.reject(credentialRenewed()));
  return forgotten
    .then(() => source.current(exchange.admitted, exchange.incoming.headers.authorization))
    .then((fresh) => {
      exchange.upstreamCredential = fresh;
      headers[source.header] = fresh;
      return send(services, exchange, headers, true);
    });
}

function resendable(exchange: McpExchange): boolean {
  return exchange.method === 'POST' && exchange.bytes !== undefined && !exchange.longLived && !exchange.outgoing.headersSent;
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
