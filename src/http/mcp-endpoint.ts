import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import type { Authenticator } from '../auth/authenticate.js';
import { DPOP_ALGORITHMS } from '../auth/dpop.js';
import { principalKey, type Principal } from '../auth/principal.js';
import { isRefusal, Refusal } from '../errors.js';
import { checkJsonContentType } from '../mcp/content-type.js';
import { ListFilter } from '../mcp/list-filter.js';
import { parseMcpBody, requestIdsOf, type McpBody } from '../mcp/message.js';
import { parseProtocolVersionHeader, parseSessionIdHeader } from '../mcp/protocol.js';
import type { SessionBindings } from '../mcp/sessions.js';
import type { Logger } from '../observability/logger.js';
import { decideBody, enforceRouteAccess, refusalFor, type MessageDecision } from '../policy/enforce.js';
import { isPromptVisible, isResourceVisible, isToolVisible } from '../policy/evaluate.js';
import { rateLimitCharges } from '../policy/rate-limits.js';
import type { Forwarder } from '../proxy/forward.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import { headerValue } from '../proxy/headers.js';
import { readBody } from './body.js';
import type { Exchange } from './exchange.js';
import { refusalResponse, writeRefusal, type RefusalContext } from './refusal.js';
import { relayUpstreamResponse } from './relay.js';
import type { RouteRuntime } from './routes.js';

export interface McpEndpointDeps {
  readonly authenticator: Authenticator;
  readonly sessions: SessionBindings;
  readonly rateLimiter: RateLimiter;
  readonly forwarder: Forwarder;
  readonly logger: Logger;
  readonly checkOrigin: (origin: string | undefined) => void;
  readonly maxBodyBytes: number;
  readonly upstreamResponseTimeoutMs: number;
}

/** Streamable HTTP uses POST (messages), GET (server stream) and DELETE (end session). */
const MCP_METHODS = ['POST', 'GET', 'DELETE'] as const;

/**
 * The gateway's request path for one route: origin → method → token → route scopes → session
 * owner → protocol version → body and per-message policy → rate limits → forward → relay. Any
 * step may refuse; refusals are rendered in one place (refusal.ts) and never reach the upstream.
 */
export function mcpEndpoint(route: RouteRuntime, deps: McpEndpointDeps) {
  const policy = route.config.policy;
  const refusalContext: RefusalContext = {
    resourceMetadataUrl: route.resourceMetadataUrl,
    routeScopes: policy.routeScopes,
    // Where an issuer requires DPoP, every challenge offers it (RFC 9449 §7.1).
    ...(route.requiresDpop ? { dpop: { algs: DPOP_ALGORITHMS } } : {}),
  };
  const authRoute = { name: route.config.name, resource: route.resource };
  // Lists are filtered only for what the policy can hide: tools unless a catch-all shows them
  // all, resources and prompts once the policy has a section for them.
  const listFilter =
    policy.showsEveryTool && !policy.resources && !policy.prompts
      ? undefined
      : new ListFilter({
          ...(policy.showsEveryTool ? {} : { tool: (name: string) => isToolVisible(policy, name) }),
          ...(policy.resources ? { resource: (uri: string) => isResourceVisible(policy, uri), resourceTemplate: (uri: string) => isResourceVisible(policy, uri) } : {}),
          ...(policy.prompts ? { prompt: (name: string) => isPromptVisible(policy, name) } : {}),
        });

  return async function handleMcpRequest(c: Context<{ Bindings: HttpBindings }>): Promise<Response> {
    const { incoming, outgoing } = c.env;
    const started = performance.now();
    let body: McpBody | undefined;
    let principal: Principal | undefined;
    try {
      deps.checkOrigin(incoming.headers.origin);
      const method = incoming.method ?? '';
      if (!(MCP_METHODS as readonly string[]).includes(method)) {
        throw new Refusal('method_not_allowed', 'Method not allowed', { allow: MCP_METHODS });
      }
      principal = await deps.authenticator.authenticate(incoming.headers.authorization, authRoute, { method, dpopProofs: incoming.headersDistinct.dpop ?? [] });
      enforceRouteAccess(policy, principal.scopes);
      const sessionId = parseSessionIdHeader(headerValue(incoming.headers, 'mcp-session-id'));
      const owner = principalKey(principal);
      const session = sessionId === undefined ? undefined : await deps.sessions.authorize(route.config.name, sessionId, owner);
      const protocolVersion = parseProtocolVersionHeader(headerValue(incoming.headers, 'mcp-protocol-version'), session?.protocolVersion);

      let bytes: Buffer | undefined;
      let decisions: MessageDecision[] = [];
      if (method === 'POST') {
        checkJsonContentType(incoming.headers);
        bytes = await readBody(incoming, deps.maxBodyBytes);
        body = parseMcpBody(bytes, protocolVersion);
        decisions = decideBody(policy, principal.scopes, body, principal);
        audit(deps.logger, route, principal, decisions);
        const refusal = refusalFor(policy, principal.scopes, body, decisions);
        if (refusal) throw refusal;
      }
      if (sessionId === undefined && body?.initializeVersion !== undefined) await deps.sessions.ensureAvailable();
      const charges = rateLimitCharges(policy, decisions);
      // Most routes have no budgets: then no store call and nothing more to compute.
      if (charges.length > 0) {
        await deps.rateLimiter.enforce({ route: route.config.name, charges, principal, rpcIds: requestIdsOf(body), onStoreError: route.config.onStoreError });
      }
      const exchange: Exchange = {
        routeName: route.config.name,
        method,
        principalKey: owner,
        protocolVersion: body?.initializeVersion ?? protocolVersion,
        sessionId,
        tokenExpiresAtMs: principal.expiresAt * 1000,
        listFilter,
      };
      const upstream = await deps.forwarder.forward(incoming, outgoing, {
        target: route.config.upstream,
        forwardHeaders: route.forwardHeaders,
        body: bytes,
        responseTimeoutMs: deps.upstreamResponseTimeoutMs,
      });
      const context = { ...refusalContext, isBatch: body?.isBatch ?? false };
      const done = (status: number) => accessLog(deps.logger, route, method, status, started, principal);
      try {
        await relayUpstreamResponse(upstream, outgoing, exchange, { sessions: deps.sessions, refusalContext: context, onDone: done });
      } catch (error) {
        // Nothing escapes once the proxy owns the response: render the refusal if nothing was
        // written yet (writeRefusal ends the connection otherwise).
        const refusal = isRefusal(error) ? error : new Refusal('upstream_unreachable', 'Upstream answer could not be relayed');
        if (!isRefusal(error)) deps.logger.error({ err: error, route: route.config.name }, 'relay failed');
        logRefusal(deps.logger, route, refusal, principal);
        writeRefusal(outgoing, refusal, context);
        done(refusal.shape.status);
      }
      return RESPONSE_ALREADY_SENT;
    } catch (error) {
      if (!isRefusal(error)) throw error;
      logRefusal(deps.logger, route, error, principal);
      return refusalResponse(error, { ...refusalContext, isBatch: body?.isBatch ?? false });
    }
  };
}

/** One line per refusal; the gateway's own trouble (upstream, store, keys) at warn. */
function logRefusal(logger: Logger, route: RouteRuntime, refusal: Refusal, principal?: Principal): void {
  logger[refusal.shape.status >= 500 ? 'warn' : 'info'](
    {
      event: 'refusal',
      route: route.config.name,
      code: refusal.code,
      status: refusal.shape.status,
      sub: principal?.subject,
      client: principal?.clientId,
      reason: refusal.message,
    },
    'request refused',
  );
}

/** One audit event per authorization decision on a tool call, allowed or not (arguments are never logged). */
function audit(logger: Logger, route: RouteRuntime, principal: Principal, decisions: readonly MessageDecision[]): void {
  for (const { message, decision } of decisions) {
    if (message.kind === 'response' || message.policy.kind !== 'tool-call') continue;
    logger.info(
      {
        event: 'authz',
        route: route.config.name,
        iss: principal.issuer,
        sub: principal.subject,
        client: principal.clientId,
        method: message.method,
        tool: message.policy.tool,
        decision: decision.effect,
        reason: decision.reason,
        rule: decision.rule,
      },
      'authorization decision',
    );
  }
}

function accessLog(logger: Logger, route: RouteRuntime, method: string, status: number, started: number, principal?: Principal): void {
  logger.info(
    { event: 'access', route: route.config.name, method, status, ms: Math.round((performance.now() - started) * 10) / 10, sub: principal?.subject },
    'request',
  );
}
