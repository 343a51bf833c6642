import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Refusal } from '../errors.js';
import { isUtf8Charset, mediaTypeOf } from '../mcp/content-type.js';
import { ServerMessageFilter } from '../mcp/server-message-filter.js';
import { SseListFilter } from '../mcp/sse-filter.js';
import { SessionBindings } from '../mcp/sessions.js';
import { withRequestId } from '../observability/request-context.js';
import { clientResponseHeaders, headerValue } from '../proxy/headers.js';
import { relayStream, type StreamRegistry } from '../proxy/stream-gate.js';
import { endTogether } from './answers-together.js';
import { readBoundedChunks, receivedWhole } from './body.js';
import type { Exchange } from './exchange.js';

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
export function relayUpstreamResponse(upstream: IncomingMessage, res: ServerResponse, exchange: Exchange, deps: RelayDeps): Promise<void> | undefined {
  const status = upstream.statusCode ?? 502;
  // 2026-07-28 has no sessions: nothing to record (and no id to bind). Most answers neither
  // start nor end one, and skip the store (and the await).
  const answer = { method: exchange.method, status, sessionId: exchange.sessionId, assignedSessionId: headerValue(upstream.headers, 'mcp-session-id') };
  if (!exchange.stateless && SessionBindings.changesSessions(answer)) {
    return deps.sessions.recordAnswer(answer, { principal: exchange.principalKey, route: exchange.routeName, protocolVersion: exchange.protocolVersion }).then(
      () => relayAnswer(upstream, res, status, exchange, deps),
      (error: unknown) => {
        upstream.destroy();
        throw error;
      },
    );
  }
  return relayAnswer(upstream, res, status, exchange, deps);
}

function relayAnswer(upstream: IncomingMessage, res: ServerResponse, status: number, exchange: Exchange, deps: RelayDeps): Promise<void> | undefined {
  // The gateway's request id, not an upstream's of the same name (which may mean something else).
  const headers = withRequestId(res, clientResponseHeaders(upstream.headers));
  const mediaType = mediaTypeOf(headers['content-type'] as string | undefined);
  const isStream = mediaType === 'text/event-stream';
  // Every answer that may carry a list is filtered, whatever the body asked (a response under a
  // tools/call id is that tool's result, and passes as the tool wrote it); a stream may also
  // carry notifications this principal must not hear. Nothing to filter, nothing parsed.
  const lists = exchange.listFilter;
  const filter =
    carriesMessages(exchange.method, status) && (lists || exchange.hidesNotifications)
      ? new ServerMessageFilter(lists, {
          markPrivate: exchange.stateless,
          resourceUpdateVisible: exchange.resourceUpdateVisible,
          listVisible: exchange.listVisible,
          toolCallIds: exchange.toolCallIds,
        })
      : undefined;
  // A GET or listen stream answered with anything but a stream would be read whole, forever
  // (Streamable HTTP §Listening for Messages from the Server: text/event-stream or 405).
  if (exchange.longLived && !isStream && carriesMessages(exchange.method, status)) return refuseAnswer(upstream, `Upstream answered a stream request with '${mediaType}', not text/event-stream`);
  // From here on the answer may hold something to filter: what cannot be checked is not passed on.
  if (filter && String(headers['content-encoding'] ?? 'identity').toLowerCase() !== 'identity') return refuseAnswer(upstream, 'Upstream answer is encoded and cannot be checked');
  if (filter && !isUtf8Charset(headers['content-type'] as string | undefined)) return refuseAnswer(upstream, 'Upstream answer is not in UTF-8 and cannot be checked');

  if (isStream) {
    // Straight through, or through the filter, with a gate that ends the stream cleanly. A GET (or 2026 listen)
    // stream outlives requests, not the token that opened it (MCP authorization §Access Token
    // Privilege Restriction): it ends at expiry and the client reconnects. Every stream ends
    // cleanly at shutdown.
    const closeAt = exchange.longLived ? exchange.tokenExpiresAtMs : Number.POSITIVE_INFINITY;
    if (filter) delete headers['content-length'];
    res.writeHead(status, headers);
    res.flushHeaders(); // the client must see the stream open now
    relayStream(upstream, res, { closeAtMs: closeAt, filter: filter ? new SseListFilter(filter) : undefined, registry: deps.streams, listening: exchange.longLived });
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
  res.writeHead(status, { ...headers, 'content-length': length });
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
