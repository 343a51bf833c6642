import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../auth/authenticate.js';
import { DPOP_ALGORITHMS } from '../auth/dpop.js';
import { principalKey, type Principal } from '../auth/principal.js';
import { isRefusal, Refusal, type RequestId, type TokenFailure } from '../errors.js';
import { checkJsonContentType } from '../mcp/content-type.js';
import { parseMcpBody, requestIdsOf, type McpBody } from '../mcp/message.js';
import { checkMirroredHeaders, dropMirroredHeaders } from '../mcp/mirrored-headers.js';
import { asSupportedVersion, isStateless, parseProtocolVersionHeader, parseSessionIdHeader } from '../mcp/protocol.js';
import { unsupportedVersionRefusal } from '../mcp/version-refusal.js';
import type { SessionBindings } from '../mcp/sessions.js';
import { auditDecisions, type AuditOutcome } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics, UpstreamFailure } from '../observability/metrics.js';
import { requestContext, withRequestId, type RequestContext } from '../observability/request-context.js';
import { identityHeadersFor, type IdentitySigner } from '../proxy/identity.js';
import { allowOrigin, preflightHeaders } from './cors.js';
import type { Lifecycle } from './lifecycle.js';
import { decideBody, enforceRouteAccess, refusalFor, stepUpAsError, type MessageDecision } from '../policy/enforce.js';
import { decideRequest, mayReadResource } from '../policy/evaluate.js';
import { RouteListFilters } from './list-filters.js';
import { rateLimitCharges } from '../policy/rate-limits.js';
import type { Forwarder } from '../proxy/forward.js';
import type { StreamRegistry } from '../proxy/stream-gate.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import { forgetCredentials, headerValue } from '../proxy/headers.js';
import { readBody } from './body.js';
import type { Exchange } from './exchange.js';
import type { ListMethod } from '../mcp/server-message-filter.js';
import { writeRefusal, type RefusalContext } from './refusal.js';
import { relayUpstreamResponse, type RelayDeps } from './relay.js';
import type { RouteRuntime } from './routes.js';

export interface McpEndpointDeps {
  readonly authenticator: Authenticator;
  readonly sessions: SessionBindings;
  readonly rateLimiter: RateLimiter;
  readonly forwarder: Forwarder;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly lifecycle: Lifecycle;
  /** Signs identity tokens for routes that send one; undefined when no route does. */
  readonly identitySigner: IdentitySigner | undefined;
  readonly checkOrigin: (origin: string | undefined) => void;
  readonly maxBodyBytes: number;
  readonly upstreamResponseTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
}

/** Reading headersDistinct builds a copy of every header: only done when a DPoP proof is sent. */
const NO_PROOFS: readonly string[] = [];

/** Streamable HTTP uses POST (messages), GET (server stream) and DELETE (end session). */
const MCP_METHODS = ['POST', 'GET', 'DELETE'] as const;

/** Answers one request on an MCP route, on the raw response; rejects only on a bug. */
export type McpHandler = (incoming: IncomingMessage, outgoing: ServerResponse) => Promise<void>;

/**
 * The gateway's request path for one route: origin → method → token → route scopes → session
 * owner → protocol version → body and per-message policy → rate limits → forward → relay. Any
 * step may refuse; refusals are rendered in one place (refusal.ts) and never reach the upstream.
 */
export function mcpEndpoint(route: RouteRuntime, deps: McpEndpointDeps): McpHandler {
  const policy = route.config.policy;
  const baseRefusalContext: RefusalContext = {
    resourceMetadataUrl: route.resourceMetadataUrl,
    routeScopes: policy.routeScopes,
    // Where an issuer requires DPoP, every challenge offers it (RFC 9449 §7.1).
    ...(route.requiresDpop ? { dpop: { algs: DPOP_ALGORITHMS } } : {}),
  };
  // Made once per route rather than spread per request: a refusal renders a batch's errors as an array.
  const refusalContexts = { single: { ...baseRefusalContext, isBatch: false }, batch: { ...baseRefusalContext, isBatch: true } };
  const refusalContextFor = (body: McpBody | undefined): RefusalContext => (body?.isBatch ? refusalContexts.batch : refusalContexts.single);
  // Route scopes are checked before a DPoP proof is recorded, so a refused request records nothing.
  const authRoute = { name: route.config.name, resource: route.resource, admit: (principal: Principal) => enforceRouteAccess(policy, principal.scopes) };
  // A verified token's principal is the same object on every request (see VerifiedTokenCache):
  // its visibility checks are made once, as principalKey is.
  const visibilities = new WeakMap<Principal, Visibility>();
  const visibilityOf = (principal: Principal): Visibility => {
    let visibility = visibilities.get(principal);
    if (visibility === undefined) visibilities.set(principal, (visibility = visibilityFor(policy, principal)));
    return visibility;
  };
  // Lists are filtered only for what the policy can hide, per principal where rules have conditions.
  const listFilters = new RouteListFilters(policy);

  // One registry per route, not a closure per stream: a closure made in the handler would keep
  // the handler's whole scope alive for as long as the stream stays open.
  const streams: StreamRegistry = {
    opened(stream) {
      deps.lifecycle.streamOpened(stream);
      deps.metrics.streamOpened(route.config.name);
    },
    closed(stream) {
      deps.lifecycle.streamClosed(stream);
      deps.metrics.streamClosed(route.config.name);
    },
  };

  const relayDeps: RelayDeps = { sessions: deps.sessions, streams };

  const audit = (principal: Principal, decisions: readonly MessageDecision[], outcome: AuditOutcome, requestId: string) => {
    for (const { decision } of decisions) deps.metrics.decision(route.config.name, decision);
    auditDecisions(deps.logger, route.config, requestId, principal, decisions, outcome);
  };

  return async function handleMcpRequest(incoming, outgoing) {
    const context = requestContext(incoming);
    if (context) context.route = route.config.name;
    const requestId = context?.id ?? '';
    let body: McpBody | undefined;
    let principal: Principal | undefined;
    let decisions: MessageDecision[] = [];
    try {
      const origin = incoming.headers.origin;
      deps.checkOrigin(origin);
      const method = incoming.method ?? '';
      if (origin !== undefined) {
        // A CORS preflight carries no credentials: it is answered before authentication.
        if (method === 'OPTIONS' && incoming.headers['access-control-request-method'] !== undefined) {
          outgoing.writeHead(204, withRequestId(outgoing, preflightHeaders(origin, route.forwardHeaders, headerValue(incoming.headers, 'access-control-request-headers')))).end();
          return;
        }
        allowOrigin(outgoing, origin);
      }
      if (!(MCP_METHODS as readonly string[]).includes(method)) {
        throw new Refusal('method_not_allowed', 'Method not allowed', { allow: MCP_METHODS });
      }
      principal =
        deps.authenticator.cachedPrincipal(incoming.headers.authorization, authRoute, incoming.socket) ??
        (await deps.authenticator.authenticate(incoming.headers.authorization, authRoute, { method, dpopProofs: incoming.headers.dpop === undefined ? NO_PROOFS : (incoming.headersDistinct.dpop ?? NO_PROOFS), context }));
      if (context) context.principal = principal;
      enforceRouteAccess(policy, principal.scopes);
      const versionHeader = headerValue(incoming.headers, 'mcp-protocol-version');
      // 2026-07-28 is stateless: one endpoint taking POSTs, no sessions (its changelog); a
      // session id sent anyway is ignored and not forwarded, and nothing is bound.
      const declared = versionHeader === undefined ? undefined : asSupportedVersion(versionHeader.trim());
      if (versionHeader !== undefined && declared === undefined) throw await unsupportedVersion(incoming, method, versionHeader, deps.maxBodyBytes);
      const stateless = declared !== undefined && isStateless(declared);
      if (stateless && method !== 'POST') throw new Refusal('method_not_allowed', 'Method not allowed', { allow: ['POST'] });
      if (stateless) delete incoming.headers['mcp-session-id'];
      else dropMirroredHeaders(incoming.headers);
      const sessionId = stateless ? undefined : parseSessionIdHeader(headerValue(incoming.headers, 'mcp-session-id'));
      const owner = principalKey(principal);
      // A memory store answers at once: only a promise is awaited (one await fewer per request).
      const authorized = sessionId === undefined ? undefined : deps.sessions.authorize(route.config.name, sessionId, owner);
      const session = authorized instanceof Promise ? await authorized : authorized;
      const protocolVersion = declared ?? parseProtocolVersionHeader(undefined, session?.protocolVersion);

      let bytes: Buffer | undefined;
      if (method === 'POST') {
        checkJsonContentType(incoming.headers);
        bytes = await readBody(incoming, deps.maxBodyBytes);
        body = parseMcpBody(bytes, protocolVersion);
        checkMirroredHeaders(incoming.headers, protocolVersion, body);
        decisions = decideBody(policy, principal.scopes, body, principal);
        const refusal = refusalFor(policy, principal.scopes, body, decisions, protocolVersion);
        if (refusal) throw refusal;
      }
      if (sessionId === undefined && body?.initializeVersion !== undefined) await deps.sessions.ensureAvailable();
      const charges = rateLimitCharges(policy, decisions);
      // Most routes have no budgets: then no store call and nothing more to compute.
      if (charges.length > 0) {
        const limiting = deps.rateLimiter.enforce({ route: route.config.name, charges, principal, rpcIds: requestIdsOf(body), onStoreError: route.config.onStoreError });
        if (limiting) await limiting;
      }
      const exchange: Exchange = {
        routeName: route.config.name,
        method,
        principalKey: owner,
        // What a new session is bound with: a version the gateway speaks, never the client's string.
        protocolVersion: asSupportedVersion(body?.initializeVersion) ?? protocolVersion,
        sessionId,
        longLived: method === 'GET' || body?.messages[0]?.kind === 'request' && body.messages[0].method === 'subscriptions/listen',
        tokenExpiresAtMs: principal.expiresAt * 1000,
        listFilter: listFilters.filterFor(principal),
        toolCallIds: body === undefined ? undefined : toolCallIdsOf(body),
        stateless,
        ...visibilityOf(principal),
      };
      const forwardedAt = performance.now();
      const upstream = await deps.forwarder.forward(incoming, outgoing, {
        target: route.config.upstream,
        forwardHeaders: route.forwardHeaders,
        body: bytes,
        responseTimeoutMs: deps.upstreamResponseTimeoutMs,
        connectTimeoutMs: deps.upstreamConnectTimeoutMs,
        // Identity tokens may need signing (async); most routes send none and skip the await.
        gatewayHeaders: route.hasIdentityHeaders ? await withIdentityHeaders(route, principal, context, deps.identitySigner) : gatewayHeaders(context),
      });
      // A stream may outlive the token by far in memory terms: nothing after this needs it.
      if (exchange.longLived) forgetCredentials(incoming);
      const upstreamSeconds = (performance.now() - forwardedAt) / 1000;
      deps.metrics.upstreamResponded(route.config.name, upstreamSeconds);
      const upstreamStatus = upstream.statusCode ?? 502;
      if (upstreamStatus >= 500) deps.metrics.upstreamFailed(route.config.name, 'server-error');
      audit(principal, decisions, { status: upstreamStatus, upstreamStatus, upstreamMs: Math.round(upstreamSeconds * 10_000) / 10 }, requestId);
      decisions = []; // audited
      try {
        const relaying = relayUpstreamResponse(upstream, outgoing, exchange, relayDeps);
        if (relaying) await relaying;
      } catch (error) {
        // Nothing escapes once the proxy owns the response: render the refusal if nothing was
        // written yet (writeRefusal ends the connection otherwise).
        const refusal = isRefusal(error) ? error : new Refusal('upstream_unreachable', 'Upstream answer could not be relayed');
        if (!isRefusal(error)) deps.logger.error({ err: error, route: route.config.name, requestId }, 'relay failed');
        noteRefusal(refusal);
        writeRefusal(outgoing, answeringRequests(refusal, body), refusalContextFor(body));
      }
    } catch (caught) {
      if (!isRefusal(caught)) throw caught;
      // Answered as an error only where there are request ids to answer: a parsed POST body with
      // requests. The route-scope check (before the body is read), GET and DELETE keep the challenge.
      const asError = principal && caught.code === 'insufficient_scope' && requestIdsOf(body).length > 0 && answersStepUpWithError(route.config.stepUp, principal);
      const refusal = asError ? stepUpAsError(caught, route.resourceMetadataUrl) : caught;
      noteRefusal(refusal);
      if (principal && decisions.length > 0) audit(principal, decisions, { status: refusal.shape.status }, requestId);
      writeRefusal(outgoing, answeringRequests(refusal, body), refusalContextFor(body));
    }

    function noteRefusal(refusal: Refusal): void {
      if (context) context.refusal = refusal;
      const failure = tokenFailureOf(refusal);
      if (failure) deps.metrics.tokenFailure(route.config.name, failure);
      const upstreamFailure = upstreamFailureOf(refusal, outgoing);
      if (upstreamFailure) deps.metrics.upstreamFailed(route.config.name, upstreamFailure);
    }
  };
}

/**
 * What a principal may hear about on a stream. Made here, not in the request handler: a filter
 * keeps these for as long as its stream is open, and a closure made in the handler would keep
 * the handler's whole scope (body, decisions, request context) alive with it.
 */
type Visibility = Pick<Exchange, 'resourceUpdateVisible' | 'listVisible' | 'hidesNotifications'>;

function visibilityFor(policy: RouteRuntime['config']['policy'], principal: Principal): Visibility {
  const listVisible = (list: ListMethod) => decideRequest(policy, principal.scopes, { kind: 'other', method: list }, principal).effect === 'allow';
  return {
    // Updates about a resource go only to whoever may read it (a subscribed URI's children
    // included): the listen stream of 2026-07-28 and the GET stream alike.
    resourceUpdateVisible: policy.resources ? (uri: string) => mayReadResource(policy, principal.scopes, uri, principal) : undefined,
    listVisible,
    hidesNotifications: policy.resources !== undefined || !listVisible('tools/list') || !listVisible('prompts/list') || !listVisible('resources/list'),
  };
}

/**
 * A refusal of a parsed body answers each of its requests by id (JSON-RPC 2.0 §5), whatever
 * refused it: the upstream failing, or its answer being refused, as much as a policy.
 */
function answeringRequests(refusal: Refusal, body: McpBody | undefined): Refusal {
  if (refusal.details.rpcIds !== undefined || body === undefined) return refusal;
  const rpcIds = requestIdsOf(body);
  return rpcIds.length === 0 ? refusal : new Refusal(refusal.code, refusal.message, { ...refusal.details, rpcIds });
}

/** Ids of the body's tools/call requests, or undefined when it has none (most bodies have one message). */
function toolCallIdsOf(body: McpBody): ReadonlySet<RequestId> | undefined {
  let ids: Set<RequestId> | undefined;
  for (const message of body.messages) if (message.kind === 'request' && message.method === 'tools/call') (ids ??= new Set()).add(message.id);
  return ids;
}

/**
 * The refusal of a version the gateway does not support. A POST's body is read first (within
 * the same limits as any body) so the answer carries each request's id, and the 2026-07-28 error
 * when the body speaks that way; a body that cannot be read is refused as it would be anyway.
 */
async function unsupportedVersion(incoming: IncomingMessage, method: string, header: string, maxBodyBytes: number): Promise<Refusal> {
  if (method !== 'POST') return unsupportedVersionRefusal(header, undefined);
  checkJsonContentType(incoming.headers);
  return unsupportedVersionRefusal(header, await readBody(incoming, maxBodyBytes));
}

/** Whether this route answers this principal's step-ups as a JSON-RPC error (routes[].stepUp). */
export function answersStepUpWithError(stepUp: RouteRuntime['config']['stepUp'], principal: Principal): boolean {
  if (stepUp.answer !== 'error') return false;
  return stepUp.clients === undefined || (principal.clientId !== undefined && stepUp.clients.includes(principal.clientId));
}

/**
 * The upstream failure a refusal counts as, if the upstream failed. A client that left before
 * the answer is refused with the same code (the forward is abandoned), but the upstream did
 * nothing wrong: Node marks the response destroyed before its 'close' reaches the forwarder.
 */
function upstreamFailureOf(refusal: Refusal, outgoing: ServerResponse): UpstreamFailure | undefined {
  if (refusal.code === 'upstream_timeout') return 'timeout';
  if (refusal.code === 'upstream_unreachable' && !outgoing.destroyed) return 'unreachable';
  return undefined;
}

/** The token-failure reason a refusal counts as, if it is about the token. */
function tokenFailureOf(refusal: Refusal): TokenFailure | 'missing' | 'dpop-proof' | undefined {
  switch (refusal.code) {
    case 'missing_token':
      return 'missing';
    case 'invalid_token':
      return refusal.details.tokenFailure ?? 'invalid';
    case 'invalid_dpop_proof':
      return 'dpop-proof';
    default:
      return undefined;
  }
}

/**
 * What the gateway itself tells the upstream: the request id and where the request came from
 * (as far as trusted proxies vouch for it). These win over any client-sent header of the same
 * name, which is never forwarded.
 */
function gatewayHeaders(context: RequestContext | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (context) {
    headers['x-request-id'] = context.id;
    const { forwardedFor, proto, host } = context.origin;
    if (forwardedFor !== undefined) headers['x-forwarded-for'] = forwardedFor;
    headers['x-forwarded-proto'] = proto;
    if (host !== undefined) headers['x-forwarded-host'] = host;
  }
  return headers;
}

/** The gateway's headers plus, on routes that ask (routes[].identityHeaders), who is calling. */
async function withIdentityHeaders(route: RouteRuntime, principal: Principal, context: RequestContext | undefined, signer: IdentitySigner | undefined): Promise<Record<string, string>> {
  return Object.assign(gatewayHeaders(context), await identityHeadersFor(route.config.identityHeaders, principal, route.config.upstream, signer));
}
