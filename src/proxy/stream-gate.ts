import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SseListFilter, SseSink } from '../mcp/sse-filter.js';

/** setTimeout cannot wait longer than this (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface StreamGate {
  /** Ends the stream cleanly now: the client sees a complete response and may reconnect. */
  end(): void;
}

/** A relayed stream as the gateway's bookkeeping sees it (shutdown ends the open ones). */
export interface RelayedStream extends StreamGate {
  /** A GET (or 2026 listen) stream: it never finishes by itself, so shutdown does not wait for it. */
  readonly listening: boolean;
}

/** Told when a relayed stream opens and when its client side closes. */
export interface StreamRegistry {
  opened(stream: RelayedStream): void;
  closed(stream: RelayedStream): void;
}

export interface RelayOptions {
  /** When to end the stream cleanly (a token's expiry); Infinity: never. */
  readonly closeAtMs: number;
  /** Filters the events on their way (an SSE answer or stream); absent: bytes pass untouched. */
  readonly filter?: SseListFilter | undefined;
  /** Registers the stream while it is open; absent for a plain answer. */
  readonly registry?: StreamRegistry | undefined;
  readonly listening?: boolean;
}

/**
 * Relays an upstream answer to the client, through `filter` when given, and ends it cleanly at
 * `closeAtMs` (a token's expiry) or when `end()` is called (shutdown): the client sees the stream
 * end instead of a destroyed connection. An upstream that fails or stops early, or a filter that
 * refuses an event, cuts the client's response (never a clean end, which would read as complete);
 * a client that goes away releases the upstream.
 */
export function relayStream(upstream: IncomingMessage, res: ServerResponse, options: RelayOptions): StreamGate {
  return new StreamRelay(upstream, res, options);
}

/**
 * Thousands of idle streams may be open, so a relay holds one object and no closures: its
 * listeners are the module functions below, which find the relay through a symbol on the emitter
 * (as Node's own HTTP code finds a socket's message). Not pipe(), nor pipeline(): each costs a
 * stream kilobytes of per-pipe closures and trackers, and the cases they would cover are
 * handled here, backpressure included.
 */
class StreamRelay implements RelayedStream, SseSink {
  readonly listening: boolean;
  private readonly filter: SseListFilter | undefined;
  private readonly registry: StreamRegistry | undefined;
  private closedByGate = false;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly upstream: IncomingMessage,
    private readonly res: ServerResponse,
    options: RelayOptions,
  ) {
    this.filter = options.filter;
    this.registry = options.registry;
    this.listening = options.listening ?? false;
    (upstream as Carrier)[RELAY] = this;
    (res as Carrier)[RELAY] = this;
    upstream.on('error', onUpstreamError).on('close', onUpstreamClose).on('end', onUpstreamEnd).on('data', onUpstreamData);
    // 'close' and 'error' come once each: on() spares the per-listener wrapper once() makes.
    res.on('drain', onClientDrain).on('close', onClientClose).on('error', onClientError);
    this.timer = Number.isFinite(options.closeAtMs) ? setTimeout(endRelay, Math.min(Math.max(options.closeAtMs - Date.now(), 0), MAX_TIMER_MS), this) : undefined;
    this.registry?.opened(this);
    // The client may have left while the answer was being checked: its 'close' has come and gone.
    if (res.closed) this.clientClosed();
    // So may the upstream have failed: its 'error' and 'close' are gone too, and no more data or
    // 'end' will come, so the client's response is cut rather than left open.
    else if (upstream.destroyed) this.cut();
  }

  end(): void {
    if (this.closedByGate) return;
    this.closedByGate = true;
    clearTimeout(this.timer);
    this.upstream.off('data', onUpstreamData);
    if (this.endFilter()) this.res.end();
    this.upstream.destroy();
  }

  /** SseSink: what passes on goes to the client; a full client buffer pauses the upstream until 'drain'. */
  push(bytes: Buffer): void {
    if (!this.res.write(bytes)) this.upstream.pause();
  }

  relay(chunk: Buffer): void {
    if (this.closedByGate) return;
    if (!this.filter) {
      this.push(chunk);
      return;
    }
    try {
      this.filter.write(chunk, this);
    } catch {
      // An event that cannot be checked (too large, or not writable back) is not passed on.
      this.abandon();
    }
  }

  finish(): void {
    if (this.closedByGate) return;
    if (this.endFilter()) this.res.end();
  }

  /**
   * Passes on what the filter still holds (an unterminated last event); false when it could not
   * be checked, and the client's response was cut instead. Called from a listener or a timer, so
   * nothing may escape: a Transform's flush caught errors like this one, and so must we.
   */
  private endFilter(): boolean {
    try {
      this.filter?.end(this);
      return true;
    } catch {
      this.abandon();
      return false;
    }
  }

  /** The filter refused: both sides go, and the client's response reads as cut. */
  private abandon(): void {
    this.upstream.destroy();
    this.res.destroy();
  }

  /** The upstream failed or stopped early: the client's response is cut, not ended. */
  cut(): void {
    if (!this.closedByGate) this.res.destroy();
  }

  resume(): void {
    this.upstream.resume();
  }

  clientClosed(): void {
    clearTimeout(this.timer);
    this.upstream.destroy();
    this.registry?.closed(this);
  }

  clientFailed(): void {
    this.upstream.destroy();
  }
}

const RELAY = Symbol('stream relay');
type Carrier = { [RELAY]?: StreamRelay };
const relayOf = (emitter: unknown): StreamRelay => (emitter as Carrier)[RELAY]!;

function onUpstreamData(this: IncomingMessage, chunk: Buffer): void {
  relayOf(this).relay(chunk);
}
function onUpstreamEnd(this: IncomingMessage): void {
  relayOf(this).finish();
}
function onUpstreamError(this: IncomingMessage): void {
  relayOf(this).cut();
}
function onUpstreamClose(this: IncomingMessage): void {
  if (!this.readableEnded) relayOf(this).cut();
}
function onClientDrain(this: ServerResponse): void {
  relayOf(this).resume();
}
function onClientClose(this: ServerResponse): void {
  relayOf(this).clientClosed();
}
/** A write to a client that is gone must not surface as an unhandled 'error'. */
function onClientError(this: ServerResponse): void {
  relayOf(this).clientFailed();
}
function endRelay(relay: StreamRelay): void {
  relay.end();
}
