import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { principalKey } from '../../../auth/principal.js';
import { isRefusal, Refusal, type RequestId } from '../../../errors.js';
import type { McpBody, McpMessage } from '../../../mcp/message.js';
import { asSupportedVersion } from '../../../mcp/protocol.js';
import { ServerMessageFilter } from '../../../mcp/server-message-filter.js';
import { SseListFilter } from '../../../mcp/sse-filter.js';
import { SessionBindings } from '../../../mcp/sessions.js';
import { clientResponseHeaders } from '../../../proxy/headers.js';
import { relayStream, type StreamRegistry } from '../../../proxy/stream-gate.js';
import { endTogether } from '../../answers-together.js';
import { readBoundedChunks, receivedWhole } from '../../body.js';
import { isUtf8Charset, mediaTypeOf } from '../../content-type.js';
import { withRequestId } from '../../gateway-response.js';
import { headerValue } from '../../headers.js';
import type { McpExchange } from '../exchange.js';
import type { RelayPlan } from '../relay-plan.js';
import type { RouteServices } from '../route-services.js';
import type { Stage } from '../stage.js';

/**
 * The upstream's answer goes to the client (see relayUpstreamResponse). What the relay keeps is
 * a plan made from the exchange, never the exchange itself. A failure that is not a refusal is
 * logged and answered as the upstream's (502): nothing escapes once the upstream has answered.
 */
export function relayStage(services: RouteServices): Stage {
  const relayDeps: RelayDeps = { sessions: services.deps.sessions, streams: services.streams };
  return function relay(exchange) {
    try {
      const relaying = relayUpstreamResponse(exchange.upstream!, exchange.outgoing, planOf(services, exchange), relayDeps);
      return relaying?.catch((error: unknown) => {
        throw asRelayRefusal(services, exchange, error);
      });
    } catch (error) {
      throw asRelayRefusal(services, exchange, error);
    }
  };
}

function asRelayRefusal({ deps, name }: RouteServices, exchange: McpExchange, error: unknown): Refusal {
  if (isRefusal(error)) return error;
  deps.logger.error({ err: error, route: name, requestId: exchange.record?.id }, 'relay failed');
  return new Refusal('upstream_unreachable', 'Upstream answer could not be relayed');
}

function planOf(services: RouteServices, exchange: McpExchange): RelayPlan {
  const principal = exchange.admitted;
  return {
    routeName: services.name,
    method: exchange.method,
    principalKey: principalKey(principal),
    // What a new session is bound with: a version the gateway speaks, never the client's string.
    protocolVersion: asSupportedVersion(exchange.body?.initializeVersion) ?? exchange.protocolVersion,
    sessionId: exchange.sessionId,
    longLived: exchange.longLived,
    tokenExpiresAtMs: principal.expiresAt * 1000,
    listFilter: services.listFilters.filterFor(principal),
    toolCallIds: exchange.body === undefined ? undefined : toolCallIdsOf(exchange.body),
    stateless: exchange.stateless,
    ...services.visibilityOf(principal),
  };
}

/** Ids of the body's tools/call requests, or undefined when it has none (most bodies have one message). */
function toolCallIdsOf(body: McpBody): Pick<ReadonlySet<RequestId>, 'has'> | undefined {
  return body.messages.some(isToolCall) ? new ToolCallIds(body.messages) : undefined;
}

function isToolCall(message: McpMessage): message is Extract<McpMessage, { kind: 'request' }> {
  return message.kind === 'request' && message.method === 'tools/call';
}

/**
 * Asked only when an answer to the calls is parsed, which a tool's result rarely needs: the Set
 * is made then, not for every call.
 */
class ToolCallIds {
  private ids: Set<RequestId> | undefined;

  constructor(private readonly messages: readonly McpMessage[]) {}

  has(id: RequestId): boolean {
    if (this.ids === undefined) {
      this.ids = new Set();
      for (const message of this.messages) if (isToolCall(message)) this.ids.add(message.id);
    }
    return this.ids.has(id);
  }
}

/** A JSON answer larger than this is not something we can safely filter in memory. */
const MAX_FILTERED_JSON_BYTES = 16 * 1024 * 1024;

export interface RelayDeps {
  readonly sessions: SessionBindings;
  /** Where SSE streams are registered while open (to end them cleanly at shutdown, and count them). */
  readonly streams: StreamRegistry;
}

/**
 * Hands the upstream's answer to the client: keeps session bindings in step (before the client
 * can learn a new session id), filters tools lists in JSON and SSE bodies, and streams
 * everything else through untouched. A refusal thrown (or rejected) before anything was written
 * is the caller's to render; after that, failures end the response.
 *
 * Returns a promise only when there is something to wait for (the store, an answer still
 * arriving): most answers are relayed at once, and the caller skips an await per request.
 */
export function relayUpstreamResponse(upstream: IncomingMessage, res: ServerResponse, plan: RelayPlan, deps: RelayDeps): Promise<void> | undefined {
  const status = upstream.statusCode ?? 502;
  // 2026-07-28 has no sessions: nothing to record (and no id to bind). Most answers neither
  // start nor end one, and skip the store (and the await).
  const answer = { method: plan.method, status, sessionId: plan.sessionId, assignedSessionId: headerValue(upstream.headers, 'mcp-session-id') };
  if (!plan.stateless && SessionBindings.changesSessions(answer)) {
    return deps.sessions.recordAnswer(answer, { principal: plan.principalKey, route: plan.routeName, protocolVersion: plan.protocolVersion }).then(
      () => relayAnswer(upstream, res, status, plan, deps),
      (error: unknown) => {
        upstream.destroy();
        throw error;
      },
    );
  }
  return relayAnswer(upstream, res, status, plan, deps);
}

function relayAnswer(upstream: IncomingMessage, res: ServerResponse, status: number, plan: RelayPlan, deps: RelayDeps): Promise<void> | undefined {
  // The gateway's request id, not an upstream's of the same name (which may mean something else).
  const headers = withRequestId(res, clientResponseHeaders(upstream.headers));
  const mediaType = mediaTypeOf(headers['content-type'] as string | undefined);
  const isStream = mediaType === 'text/event-stream';
  // Every answer that may carry a list is filtered, whatever the body asked (a response under a
  // tools/call id is that tool's result, and passes as the tool wrote it); a stream may also
  // carry notifications this principal must not hear. Nothing to filter, nothing parsed.
  const lists = plan.listFilter;
  const filter =
    carriesMessages(plan.method, status) && (lists || plan.hidesNotifications)
      ? new ServerMessageFilter(lists, {
          markPrivate: plan.stateless,
          resourceUpdateVisible: plan.resourceUpdateVisible,
          listVisible: plan.listVisible,
          toolCallIds: plan.toolCallIds,
        })
      : undefined;
  // A GET or listen stream answered with anything but a stream would be read whole, forever
  // (Streamable HTTP §Listening for Messages from the Server: text/event-stream or 405).
  if (plan.longLived && !isStream && carriesMessages(plan.method, status)) return refuseAnswer(upstream, `Upstream answered a stream request with '${mediaType}', not text/event-stream`);
  // From here on the answer may hold something to filter: what cannot be checked is not passed on.
  if (filter && String(headers['content-encoding'] ?? 'identity').toLowerCase() !== 'identity') return refuseAnswer(upstream, 'Upstream answer is encoded and cannot be checked');
  if (filter && !isUtf8Charset(headers['content-type'] as string | undefined)) return refuseAnswer(upstream, 'Upstream answer is not in UTF-8 and cannot be checked');

  if (isStream) {
    // Straight through, or through the filter, with a gate that ends the stream cleanly. A GET (or 2026 listen)
    // stream outlives requests, not the token that opened it (MCP authorization §Access Token
    // Privilege Restriction): it ends at expiry and the client reconnects. Every stream ends
    // cleanly at shutdown.
    const closeAt = plan.longLived ? plan.tokenExpiresAtMs : Number.POSITIVE_INFINITY;
    if (filter) delete headers['content-length'];
    res.writeHead(status, headers);
    res.flushHeaders(); // the client must see the stream open now
    relayStream(upstream, res, { closeAtMs: closeAt, filter: filter ? new SseListFilter(filter) : undefined, registry: deps.streams, listening: plan.longLived });
    return undefined;
  }
  // A JSON answer has usually arrived whole by now: the upstream's parser pushed all of it in the
  // same turn as its head, before the forwarder's promise let this run. Then it is taken in one
  // read(), with no listeners, stream or promise.
  const whole = receivedWhole(upstream, filter ? MAX_FILTERED_JSON_BYTES : Number.POSITIVE_INFINITY);
  if (filter && mediaType === 'application/json') {
    if (whole === undefined) return readAnswer(upstream, res).then((chunks) => endFiltered(upstream, res, status, headers, filter, chunks));
    endFiltered(upstream, res, status, headers, filter, whole === 'too-large' ? whole : [whole]);
    return undefined;
  }
  if (filter && headers['content-length'] !== '0') return refuseAnswer(upstream, `Upstream answered with unexpected content type '${mediaType}'`);
  res.writeHead(status, headers);
  if (whole !== undefined && whole !== 'too-large') {
    endTogether(res, whole);
    return undefined;
  }
  // Relayed as streams are (cheaper than pipeline() per answer): an upstream that fails or stops
  // early cuts the client's response; the access log records how it ended.
  relayStream(upstream, res, { closeAtMs: Number.POSITIVE_INFINITY });
  return undefined;
}

/** A JSON answer's filtered parts, with a head that counts them; an answer that cannot be checked is refused. */
function endFiltered(upstream: IncomingMessage, res: ServerResponse, status: number, headers: OutgoingHttpHeaders, filter: ServerMessageFilter, chunks: Buffer[] | 'too-large' | undefined): void {
  const parts = chunks === undefined || chunks === 'too-large' ? undefined : filter.filterJsonAnswer(chunks);
  if (!parts) refuseAnswer(upstream, 'Upstream answer could not be checked');
  let length = 0;
  for (const part of parts) length += part.length;
  // A string, as every header value the gateway writes: a number reaching node:http's header
  // check deoptimises it, and each header then took V8's generic regular-expression path
  // (docs/performance.md, item 32).
  res.writeHead(status, { ...headers, 'content-length': String(length) });
  endTogether(res, parts);
}

/** The answer is dropped (never half-relayed) and the client told the upstream failed. */
function refuseAnswer(upstream: IncomingMessage, why: string): never {
  upstream.destroy();
  throw new Refusal('upstream_unreachable', why);
}

/** A JSON answer still arriving, in its chunks; undefined when it failed or ended early. */
function readAnswer(upstream: IncomingMessage, res: ServerResponse): Promise<Buffer[] | 'too-large' | undefined> {
  // A client that leaves while the answer is still being read releases the upstream (once
  // the response is finished, 'close' changes nothing).
  res.once('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  return readBoundedChunks(upstream, MAX_FILTERED_JSON_BYTES).catch(() => undefined);
}

/** Only successful POST and GET answers carry server messages (202/204 have no body). */
function carriesMessages(method: string, status: number): boolean {
  return (method === 'POST' || method === 'GET') && status >= 200 && status < 300 && status !== 202 && status !== 204;
}
