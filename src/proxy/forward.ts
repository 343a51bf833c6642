import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type ClientRequestArgs, type IncomingMessage, type RequestOptions, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Refusal } from '../errors.js';
import { upstreamHeaderLines } from './headers.js';

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
  /**
   * Whether the client's Mcp-Param-* headers may go upstream: only a 2026-07-28 request's, checked
   * against its body. False spares looking for them. Default true.
   */
  readonly paramHeaders?: boolean;
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
  private readonly httpAgent = new ConnectDeadlineHttpAgent({ keepAlive: true, scheduling: 'lifo' });
  private readonly httpsAgent = new ConnectDeadlineHttpsAgent({ keepAlive: true, scheduling: 'lifo' });

  forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): Promise<IncomingMessage> {
    const { body } = options;
    const target = requestTarget(options.target);
    const secure = target.protocol === 'https:';
    const requestOptions: RequestOptions & ConnectDeadline = {
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      path: target.path,
      method: req.method,
      headers: upstreamHeaderLines(req.headers, options.forwardHeaders, body, options.gatewayHeaders, target.host, options.paramHeaders),
      agent: secure ? this.httpsAgent : this.httpAgent,
      // Read by the agent when it opens a connection (a pooled one is already connected).
      connectTimeoutMs: options.connectTimeoutMs,
    };
    const upstreamRequest = (secure ? httpsRequest : httpRequest)(requestOptions);
    const pending = new PendingForward(upstreamRequest, res, options.responseTimeoutMs);
    // GET and DELETE carry no body: whatever a client sent with them is not forwarded.
    upstreamRequest.end(body);
    return pending.promise;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/** What request() is given of an upstream URL. */
interface RequestTarget {
  /** The URL's href these were read from. */
  readonly href: string;
  readonly protocol: string;
  readonly hostname: string;
  readonly port: string;
  readonly path: string;
  readonly host: string;
}

const requestTargets = new WeakMap<URL, RequestTarget>();

/**
 * A route's upstream URL read into request() options once, not on every request: each of a URL's
 * getters slices its href into a new string. Read again if the URL was changed since.
 */
function requestTarget(url: URL): RequestTarget {
  const known = requestTargets.get(url);
  if (known !== undefined && known.href === url.href) return known;
  const { hostname } = url;
  const target: RequestTarget = {
    href: url.href,
    protocol: url.protocol,
    // WHATWG URLs keep an IPv6 literal's brackets ("[::1]"); the resolver wants it bare.
    hostname: hostname.startsWith('[') ? hostname.slice(1, -1) : hostname,
    port: url.port,
    path: url.pathname + url.search,
    host: url.host,
  };
  requestTargets.set(url, target);
  return target;
}

const PENDING = Symbol('mcp-auth-gateway.pending-forward');
type Carrier = { [PENDING]?: PendingForward };

/**
 * One forwarded request until the upstream's head arrives. Its listeners are the module
 * functions below, which find it through a symbol on the emitter, and its timer gets it as an
 * argument: one object per request rather than a closure per listener (every request pays for
 * them). Once settled, nothing on the (possibly long-lived) upstream request or client response
 * still refers to it; later errors surface on the response the caller now owns.
 */
class PendingForward {
  readonly promise: Promise<IncomingMessage>;
  private resolve!: (upstream: IncomingMessage) => void;
  private reject!: (refusal: Refusal) => void;
  private settled = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly request: ClientRequest,
    private readonly res: ServerResponse,
    responseTimeoutMs: number,
  ) {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    (request as Carrier)[PENDING] = this;
    (res as Carrier)[PENDING] = this;
    request.on('response', onUpstreamResponse).on('error', onUpstreamError);
    // A client that leaves before the answer releases the upstream request.
    res.on('close', onClientGone);
    this.timer = setTimeout(onResponseTimeout, responseTimeoutMs, this);
  }

  answered(upstream: IncomingMessage): void {
    if (this.settled) {
      upstream.destroy();
      return;
    }
    this.settle();
    this.resolve(upstream);
  }

  fail(refusal: Refusal): void {
    if (this.settled) return;
    this.settle();
    this.request.destroy();
    this.reject(refusal);
  }

  private settle(): void {
    this.settled = true;
    clearTimeout(this.timer);
    // Cleared, not deleted: a delete would turn the emitters into slow dictionary objects.
    (this.request as Carrier)[PENDING] = undefined;
    (this.res as Carrier)[PENDING] = undefined;
    this.res.off('close', onClientGone);
    this.request.off('response', onUpstreamResponse).off('error', onUpstreamError).on('error', ignoreLateError);
  }
}

function onUpstreamResponse(this: ClientRequest, upstream: IncomingMessage): void {
  const pending = (this as Carrier)[PENDING];
  if (pending) pending.answered(upstream);
  else upstream.destroy();
}

function onUpstreamError(this: ClientRequest, error: NodeJS.ErrnoException): void {
  const why = error.code === CONNECT_TIMEOUT ? 'connect timeout' : (error.code ?? 'error');
  (this as Carrier)[PENDING]?.fail(new Refusal('upstream_unreachable', `Upstream unavailable (${why})`));
}

function onClientGone(this: ServerResponse): void {
  (this as Carrier)[PENDING]?.fail(new Refusal('upstream_unreachable', 'Client went away before the upstream answered'));
}

function onResponseTimeout(pending: PendingForward): void {
  pending.fail(new Refusal('upstream_timeout', 'Upstream did not answer in time'));
}

/**
 * The request's 'error' listener once its outcome is known: a destroyed request may still emit
 * one ("socket hang up"), which must not crash the process; the response relay sees the failure.
 */
function ignoreLateError(): void {}

/** The error code a connection that missed its deadline is destroyed with. */
const CONNECT_TIMEOUT = 'ERR_GATEWAY_CONNECT_TIMEOUT';

/** Request options the agents below read when they open a connection. */
interface ConnectDeadline {
  readonly connectTimeoutMs?: number;
}

/**
 * The connect deadline is armed where a connection is made, in the agent, so that a request on a
 * pooled socket (nearly every one) pays nothing for it: no 'socket' listener per request.
 */
class ConnectDeadlineHttpAgent extends HttpAgent {
  override createConnection(options: ClientRequestArgs & ConnectDeadline, callback?: (error: Error | null, socket: Duplex) => void): Duplex {
    return withConnectDeadline(super.createConnection(options, callback) as Socket, options.connectTimeoutMs);
  }
}

class ConnectDeadlineHttpsAgent extends HttpsAgent {
  override createConnection(options: ClientRequestArgs & ConnectDeadline, callback?: (error: Error | null, socket: Duplex) => void): Duplex {
    return withConnectDeadline(super.createConnection(options, callback) as Socket, options.connectTimeoutMs);
  }
}

/** A new socket must connect (and finish TLS) within the deadline, or is destroyed with CONNECT_TIMEOUT. */
function withConnectDeadline(socket: Socket, timeoutMs: number | undefined): Socket {
  if (timeoutMs === undefined || !socket.connecting) return socket;
  const timer = setTimeout(() => socket.destroy(Object.assign(new Error('Upstream connect timeout'), { code: CONNECT_TIMEOUT })), timeoutMs);
  // Both listeners go once either fires: a pooled socket outlives its first request.
  const connected = 'encrypted' in socket ? 'secureConnect' : 'connect';
  const done = () => {
    clearTimeout(timer);
    socket.off(connected, done).off('close', done);
  };
  socket.once(connected, done).once('close', done);
  return socket;
}
