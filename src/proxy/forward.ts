import { Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
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

interface InFlight {
  readonly resolve: (upstream: IncomingMessage) => void;
  readonly reject: (refusal: Refusal) => void;
  upstreamRequest?: { destroy(error?: Error): void } | undefined;
  settled: boolean;
  timer?: NodeJS.Timeout;
  readonly connectTimeoutMs: number;
  /** Removes the client-close listener once the flight is settled. */
  detach?: () => void;
}

/** The forwarding state rides on the request itself: no WeakMap entry (an ephemeron) per request. */
const FLIGHT = Symbol('mcp-auth-gateway.flight');
type Flighted = IncomingMessage & { [FLIGHT]?: InFlight };

/**
 * Forwards requests with http-proxy-3 over pooled keep-alive connections. The gateway handles
 * every upstream response itself (selfHandleResponse) so it can bind sessions and filter lists
 * before the client sees a byte: `forward` resolves with the upstream's response, untouched, or
 * rejects with a 502/504 Refusal before anything was written to the client.
 */
export class Forwarder {
  private readonly proxy = createProxyServer({ selfHandleResponse: true, ignorePath: true, changeOrigin: true, xfwd: false });
  // No per-host socket cap: each open SSE stream holds a socket, and a cap would queue new
  // requests behind idle streams. LIFO reuse keeps the warm sockets warm.
  private readonly httpAgent = new HttpAgent({ keepAlive: true, scheduling: 'lifo' });
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true, scheduling: 'lifo' });

  constructor() {
    // http-proxy-3 emits proxyReq from within the upstream request's 'socket' event, and hands
    // the socket over as the fifth argument: listening for 'socket' here would be too late.
    this.proxy.on('proxyReq', (upstreamRequest, req, _res, _options, socket) => {
      const flight = (req as Flighted)[FLIGHT];
      if (!flight) return;
      if (flight.settled) {
        upstreamRequest.destroy();
        return;
      }
      flight.upstreamRequest = upstreamRequest;
      const connectTimeoutMs = flight.connectTimeoutMs;
      // A pooled socket is already connected; a new one must connect within the deadline.
      if (!socket?.connecting) return;
      const timer = setTimeout(() => this.fail(flight, new Refusal('upstream_unreachable', 'Upstream unavailable (connect timeout)')), connectTimeoutMs);
      // Both listeners go once either fires: a pooled socket outlives this request (and an idle
      // stream's socket would otherwise keep the timer's closure alive).
      const connected = 'encrypted' in socket ? 'secureConnect' : 'connect';
      const done = () => {
        clearTimeout(timer);
        socket.off(connected, done).off('close', done);
      };
      socket.once(connected, done).once('close', done);
    });
    this.proxy.on('proxyRes', (upstreamResponse, req) => {
      const flight = (req as Flighted)[FLIGHT];
      if (!flight || flight.settled) {
        upstreamResponse.destroy();
        return;
      }
      this.settle(req, flight);
      flight.resolve(upstreamResponse);
    });
    this.proxy.on('error', (error, req) => {
      const flight = (req as Flighted)[FLIGHT];
      if (flight) this.fail(flight, new Refusal('upstream_unreachable', `Upstream unavailable (${(error as NodeJS.ErrnoException).code ?? 'error'})`));
    });
  }

  forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const flight: InFlight = { resolve, reject, settled: false, connectTimeoutMs: options.connectTimeoutMs };
      flight.timer = setTimeout(() => this.fail(flight, new Refusal('upstream_timeout', 'Upstream did not answer in time')), options.responseTimeoutMs);
      (req as Flighted)[FLIGHT] = flight;
      const clientGone = () => clearTimeout(flight.timer);
      res.once('close', clientGone);
      flight.detach = () => res.off('close', clientGone);
      req.headers = { ...upstreamRequestHeaders(req.headers, options.forwardHeaders, options.body), ...options.gatewayHeaders };
      void this.proxy.web(req, res, {
        target: options.target,
        agent: options.target.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
        // GET and DELETE carry no body: the (already ended) request itself is piped.
        ...(options.body ? { buffer: Readable.from(options.body) } : {}),
      });
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private fail(flight: InFlight, refusal: Refusal): void {
    if (flight.settled) return;
    flight.upstreamRequest?.destroy();
    // The flight stays on the request: an upstream request that only now gets its socket is
    // destroyed when proxyReq finds it settled.
    this.settle(undefined, flight);
    flight.reject(refusal);
  }

  /**
   * Once the upstream has answered (or failed), the flight's timer and listener are let go; after
   * an answer the flight itself too, so a long-lived stream does not keep its promise alive.
   */
  private settle(req: IncomingMessage | undefined, flight: InFlight): void {
    flight.settled = true;
    clearTimeout(flight.timer);
    flight.timer = undefined;
    flight.detach?.();
    if (req) {
      flight.upstreamRequest = undefined;
      (req as Flighted)[FLIGHT] = undefined;
    }
  }
}
