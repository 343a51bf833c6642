import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, type RequestOptions, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { Refusal } from '../errors.js';
import { upstreamRequestHeaders } from './headers.js';

export interface ForwardOptions {
  readonly target: URL;
  /** Request headers passed to the upstream (lower-case names); see FORWARDED_REQUEST_HEADERS. */
  readonly forwardHeaders: ReadonlySet<string>;
  /** The body already read for policy, forwarded as the same bytes. */
  readonly body: Buffer | undefined;
  /** Longest wait for the upstream's response headers; a started stream is never cut by it. */
  readonly responseTimeoutMs: number;
  /** Longest wait for the upstream connection (TCP, and TLS for https). */
  readonly connectTimeoutMs: number;
  /** Headers the gateway itself sets (identity, X-Forwarded-*, X-Request-Id); they win over any client copy. */
  readonly gatewayHeaders: Readonly<Record<string, string>>;
}

/**
 * Sends each request to its upstream over pooled keep-alive connections and resolves with the
 * upstream's response, untouched, before anything was written to the client (the gateway binds
 * sessions and filters lists before the client sees a byte); or rejects with a 502/504 Refusal.
 *
 * node:http's own `request()`, not http-proxy-3: the gateway reads and checks every body and
 * relays every answer itself, so a proxy library's request piping and response passes were pure
 * overhead. `npm run bench` measures both as bare hops (rows b and b-node); node:http was the
 * cheaper one per request (docs/performance.md).
 */
export class Forwarder {
  // No per-host socket cap: each open SSE stream holds a socket, and a cap would queue new
  // requests behind idle streams. LIFO reuse keeps the warm sockets warm.
  private readonly httpAgent = new HttpAgent({ keepAlive: true, scheduling: 'lifo' });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true, scheduling: 'lifo' });

  forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const { target, body } = options;
      const headers: OutgoingHttpHeaders = upstreamRequestHeaders(req.headers, options.forwardHeaders, body);
      Object.assign(headers, options.gatewayHeaders);
      headers.host = target.host;
      const secure = target.protocol === 'https:';
      const requestOptions: RequestOptions = {
        protocol: target.protocol,
        // WHATWG URLs keep an IPv6 literal's brackets ("[::1]"); the resolver wants it bare.
        hostname: target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method: req.method,
        headers: headerLines(headers),
        agent: secure ? this.httpsAgent : this.httpAgent,
      };
      let settled = false;
      // Once settled, nothing on the (possibly long-lived) upstream request may still hold this
      // closure's state: an open stream would keep the timer, the headers and the promise alive.
      // Later errors surface on the response the caller now owns.
      const settle = () => {
        settled = true;
        clearTimeout(responseTimer);
        res.off('close', clientGone);
        upstreamRequest.off('error', upstreamFailed).on('error', ignoreLateError);
      };
      const fail = (refusal: Refusal) => {
        if (settled) return;
        settle();
        upstreamRequest.destroy();
        reject(refusal);
      };
      const upstreamRequest: ClientRequest = (secure ? httpsRequest : httpRequest)(requestOptions, (upstream) => {
        if (settled) {
          upstream.destroy();
          return;
        }
        settle();
        resolve(upstream);
      });
      const responseTimer = setTimeout(() => fail(new Refusal('upstream_timeout', 'Upstream did not answer in time')), options.responseTimeoutMs);
      // A client that leaves before the answer releases the upstream request.
      const clientGone = () => fail(new Refusal('upstream_unreachable', 'Client went away before the upstream answered'));
      res.on('close', clientGone);
      const upstreamFailed = (error: NodeJS.ErrnoException) => fail(new Refusal('upstream_unreachable', `Upstream unavailable (${error.code ?? 'error'})`));
      upstreamRequest.on('error', upstreamFailed);
      upstreamRequest.once('socket', (socket: Socket) => armConnectTimeout(socket, options.connectTimeoutMs, () => fail(new Refusal('upstream_unreachable', 'Upstream unavailable (connect timeout)'))));
      // GET and DELETE carry no body: whatever a client sent with them is not forwarded.
      upstreamRequest.end(body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/**
 * Headers as name/value pairs: given an object, node:http validates and stores each one in a
 * header map (setHeader) before writing the head, which it then keeps for as long as the
 * request lives (an open stream's whole life); given pairs, it writes the head at once, each
 * header still validated. Host is among them (node:http adds it only for an object).
 */
function headerLines(headers: OutgoingHttpHeaders): string[] {
  const lines: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const one of value) lines.push(name, one);
    else lines.push(name, String(value));
  }
  return lines;
}

/**
 * The request's 'error' listener once its outcome is known: a destroyed request may still emit
 * one ("socket hang up"), which must not crash the process; the response relay sees the failure.
 */
function ignoreLateError(): void {}

/** A pooled socket is already connected; a new one must connect (and finish TLS) within the deadline. */
function armConnectTimeout(socket: Socket, timeoutMs: number, onTimeout: () => void): void {
  if (!socket.connecting) return;
  const timer = setTimeout(onTimeout, timeoutMs);
  // Both listeners go once either fires: a pooled socket outlives this request (and an idle
  // stream's socket would otherwise keep the timer's closure alive).
  const connected = 'encrypted' in socket ? 'secureConnect' : 'connect';
  const done = () => {
    clearTimeout(timer);
    socket.off(connected, done).off('close', done);
  };
  socket.once(connected, done).once('close', done);
}
