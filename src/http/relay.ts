import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { Refusal } from '../errors.js';
import { isValidSessionId } from '../mcp/protocol.js';
import { SseListFilter } from '../mcp/sse-filter.js';
import type { SessionBindings } from '../mcp/sessions.js';
import { clientResponseHeaders } from '../proxy/headers.js';
import type { Exchange } from './exchange.js';
import { writeRefusal, type RefusalContext } from './refusal.js';

/** A JSON answer larger than this is not something we can safely filter in memory. */
const MAX_FILTERED_JSON_BYTES = 16 * 1024 * 1024;

export interface RelayDeps {
  readonly sessions: SessionBindings;
  readonly refusalContext: RefusalContext;
  readonly onDone: (status: number) => void;
}

/**
 * Hands the upstream's answer to the client: binds a newly assigned session to the principal
 * before the client can learn its id, forgets ended sessions, and filters tools/list results in
 * JSON and SSE bodies alike. Everything else streams through untouched.
 */
export async function relayUpstreamResponse(upstream: IncomingMessage, res: ServerResponse, exchange: Exchange, deps: RelayDeps): Promise<void> {
  const status = upstream.statusCode ?? 502;
  try {
    await updateSessionBinding(upstream, exchange, deps.sessions);
  } catch (error) {
    upstream.destroy();
    const refusal = error instanceof Refusal ? error : new Refusal('store_unavailable', 'Session store unavailable');
    writeRefusal(res, refusal, deps.refusalContext);
    deps.onDone(refusal.shape.status);
    return;
  }
  const headers = clientResponseHeaders(upstream.headers);
  const finish = (error?: Error | null) => deps.onDone(error ? 499 : status);
  const refuse = (why: string) => {
    upstream.destroy();
    writeRefusal(res, new Refusal('upstream_unreachable', why), deps.refusalContext);
    deps.onDone(502);
  };
  const mediaType = String(headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  // A GET stream outlives requests: it is relayed through a gate that can close it cleanly.
  const source = exchange.method === 'GET' && mediaType === 'text/event-stream' ? untilTokenExpiry(upstream, res, exchange.tokenExpiresAtMs) : upstream;

  if (!exchange.listFilter || !carriesMessages(exchange.method, status)) {
    res.writeHead(status, headers);
    if (mediaType === 'text/event-stream') res.flushHeaders(); // the client must see the stream open now
    pipeline(source, res, finish);
    return;
  }
  // From here on the answer may hold a tools list: what cannot be checked is not passed on.
  const encoding = String(headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') return refuse('Upstream answer is encoded and cannot be checked');
  if (mediaType === 'application/json') {
    const body = await readAll(upstream, MAX_FILTERED_JSON_BYTES);
    const filtered = body && exchange.listFilter.filterJsonBody(body);
    if (!filtered) return refuse('Upstream answer could not be checked');
    res.writeHead(status, { ...headers, 'content-length': filtered.length });
    res.end(filtered, () => finish());
    return;
  }
  if (mediaType === 'text/event-stream') {
    delete headers['content-length'];
    res.writeHead(status, headers);
    res.flushHeaders();
    pipeline(source, new SseListFilter(exchange.listFilter), res, finish);
    return;
  }
  if (headers['content-length'] === '0') {
    res.writeHead(status, headers);
    pipeline(upstream, res, finish);
    return;
  }
  return refuse(`Upstream answered with unexpected content type '${mediaType}'`);
}

/** setTimeout cannot wait longer than this (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A GET stream lives as long as the client keeps it, but the token that opened it does not:
 * when it expires the stream is ended cleanly, and the client reconnects (resuming with
 * Last-Event-ID) with its current token (MCP authorization §Access Token Privilege
 * Restriction: no data to parties whose authorization has ended). Returns the gate to relay from.
 */
function untilTokenExpiry(upstream: IncomingMessage, res: ServerResponse, expiresAtMs: number): Readable {
  const gate = new PassThrough();
  let expired = false;
  upstream.pipe(gate);
  upstream.once('close', () => {
    if (!expired && !upstream.readableEnded) gate.destroy(new Error('upstream stream closed early'));
  });
  const timer = setTimeout(() => {
    expired = true;
    upstream.unpipe(gate);
    upstream.destroy();
    gate.end();
  }, Math.min(Math.max(expiresAtMs - Date.now(), 0), MAX_TIMER_MS));
  res.once('close', () => {
    clearTimeout(timer);
    upstream.destroy(); // the client is gone: so is any reason to keep the upstream stream
  });
  return gate;
}

/** Only successful POST and GET answers carry server messages (202/204 have no body). */
function carriesMessages(method: string, status: number): boolean {
  return (method === 'POST' || method === 'GET') && status >= 200 && status < 300 && status !== 202 && status !== 204;
}

async function updateSessionBinding(upstream: IncomingMessage, exchange: Exchange, sessions: SessionBindings): Promise<void> {
  const assigned = headerValue(upstream.headers['mcp-session-id']);
  const status = upstream.statusCode ?? 0;
  if (assigned !== undefined && assigned !== exchange.sessionId && status < 300) {
    // An id the client could never send back (control characters, huge) is the upstream's fault.
    if (!isValidSessionId(assigned)) throw new Refusal('upstream_unreachable', 'Upstream assigned an invalid session id');
    await sessions.bind(assigned, { principal: exchange.principalKey, route: exchange.route, protocolVersion: exchange.protocolVersion });
  }
  if (exchange.sessionId !== undefined && ((exchange.method === 'DELETE' && status < 300) || status === 404)) {
    await sessions.forget(exchange.route, exchange.sessionId);
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function readAll(stream: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        stream.destroy();
        resolve(undefined);
      } else chunks.push(chunk);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks, size)));
    stream.on('error', () => resolve(undefined));
  });
}
