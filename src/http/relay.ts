import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { Refusal } from '../errors.js';
import { mediaTypeOf } from '../mcp/content-type.js';
import { ServerMessageFilter } from '../mcp/server-message-filter.js';
import { SseListFilter } from '../mcp/sse-filter.js';
import type { SessionBindings } from '../mcp/sessions.js';
import { clientResponseHeaders, headerValue } from '../proxy/headers.js';
import { openStreamGate } from '../proxy/stream-gate.js';
import { readBounded } from './body.js';
import type { Exchange } from './exchange.js';
import type { OpenStream } from './lifecycle.js';
import type { RefusalContext } from './refusal.js';

/** A JSON answer larger than this is not something we can safely filter in memory. */
const MAX_FILTERED_JSON_BYTES = 16 * 1024 * 1024;

export interface RelayDeps {
  readonly sessions: SessionBindings;
  readonly refusalContext: RefusalContext;
  /** Registers an SSE stream (to end it cleanly at shutdown, and count it); returns its release. */
  readonly openStream: (stream: OpenStream, listening: boolean) => () => void;
}

/**
 * Hands the upstream's answer to the client: keeps session bindings in step (before the client
 * can learn a new session id), filters tools lists in JSON and SSE bodies, and streams
 * everything else through untouched. A refusal thrown before anything was written is the
 * caller's to render; after that, failures end the response.
 */
export async function relayUpstreamResponse(upstream: IncomingMessage, res: ServerResponse, exchange: Exchange, deps: RelayDeps): Promise<void> {
  const status = upstream.statusCode ?? 502;
  // 2026-07-28 has no sessions: nothing to record (and no id to bind).
  if (!exchange.stateless) {
    try {
      await deps.sessions.recordAnswer(
        { method: exchange.method, status, sessionId: exchange.sessionId, assignedSessionId: headerValue(upstream.headers, 'mcp-session-id') },
        { principal: exchange.principalKey, route: exchange.routeName, protocolVersion: exchange.protocolVersion },
      );
    } catch (error) {
      upstream.destroy();
      throw error;
    }
  }
  const headers = clientResponseHeaders(upstream.headers);
  const mediaType = mediaTypeOf(headers['content-type'] as string | undefined);
  let source: NodeJS.ReadableStream = upstream;
  if (mediaType === 'text/event-stream') {
    // A GET stream outlives requests, not the token that opened it (MCP authorization §Access
    // Token Privilege Restriction): it ends cleanly at expiry and the client reconnects. Every
    // stream can be ended cleanly at shutdown.
    const gate = openStreamGate(upstream, res, exchange.method === 'GET' ? exchange.tokenExpiresAtMs : Number.POSITIVE_INFINITY);
    source = gate.readable;
    res.once('close', deps.openStream(gate, exchange.method === 'GET'));
  }
  // Errors end the response; the access log records how it ended.
  const finish = () => undefined;
  const refuse = (why: string) => {
    upstream.destroy();
    throw new Refusal('upstream_unreachable', why);
  };

  // Streams may carry notifications for this principal alone to filter; JSON answers only lists.
  const filter =
    exchange.listFilter || mediaType === 'text/event-stream'
      ? new ServerMessageFilter(exchange.listFilter, {
          markPrivate: exchange.stateless,
          resourceUpdateVisible: exchange.resourceUpdateVisible,
          listVisible: exchange.listVisible,
        })
      : undefined;
  if (!filter || !carriesMessages(exchange.method, status)) {
    res.writeHead(status, headers);
    if (mediaType === 'text/event-stream') res.flushHeaders(); // the client must see the stream open now
    pipeline(source, res, finish);
    return;
  }
  // From here on the answer may hold a tools list: what cannot be checked is not passed on.
  const encoding = String(headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') return refuse('Upstream answer is encoded and cannot be checked');
  if (mediaType === 'application/json') {
    const body = await readBounded(upstream, MAX_FILTERED_JSON_BYTES).catch(() => undefined);
    const filtered = body === undefined || body === 'too-large' ? undefined : filter.filterJsonBody(body);
    if (!filtered) return refuse('Upstream answer could not be checked');
    res.writeHead(status, { ...headers, 'content-length': filtered.length });
    res.end(filtered, () => finish());
    return;
  }
  if (mediaType === 'text/event-stream') {
    delete headers['content-length'];
    res.writeHead(status, headers);
    res.flushHeaders();
    pipeline(source, new SseListFilter(filter), res, finish);
    return;
  }
  if (headers['content-length'] === '0') {
    res.writeHead(status, headers);
    pipeline(source, res, finish);
    return;
  }
  return refuse(`Upstream answered with unexpected content type '${mediaType}'`);
}

/** Only successful POST and GET answers carry server messages (202/204 have no body). */
function carriesMessages(method: string, status: number): boolean {
  return (method === 'POST' || method === 'GET') && status >= 200 && status < 300 && status !== 202 && status !== 204;
}
