import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Transform } from 'node:stream';

/** setTimeout cannot wait longer than this (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface StreamGate {
  /** Ends the stream cleanly now: the client sees a complete response and may reconnect. */
  end(): void;
}

/**
 * Relays an upstream stream to the client, through `filter` when given, and ends it cleanly at
 * `closeAtMs` (a token's expiry) or when `end()` is called (shutdown): the client sees the stream
 * end instead of a destroyed connection. Plain pipes, not `pipeline()`: thousands of idle
 * streams may be open, and each pipeline stage costs kilobytes of trackers; the failure paths
 * pipeline would cover are handled here. An upstream that fails or stops early, or a filter that
 * refuses an event, cuts the client's response (never a clean end, which would read as complete);
 * a client that goes away releases the upstream.
 */
export function relayStream(upstream: IncomingMessage, res: ServerResponse, closeAtMs: number, filter?: Transform): StreamGate {
  let closedByGate = false;
  const cut = () => {
    if (!closedByGate) res.destroy();
  };
  upstream.on('error', cut);
  upstream.once('close', () => {
    if (!upstream.readableEnded) cut();
  });
  if (filter) {
    filter.on('error', () => {
      upstream.destroy();
      res.destroy();
    });
    upstream.pipe(filter).pipe(res);
  } else {
    upstream.pipe(res);
  }
  const end = () => {
    if (closedByGate) return;
    closedByGate = true;
    clearTimeout(timer);
    if (filter) {
      upstream.unpipe(filter);
      filter.end();
    } else {
      upstream.unpipe(res);
      res.end();
    }
    upstream.destroy();
  };
  const timer = Number.isFinite(closeAtMs) ? setTimeout(end, Math.min(Math.max(closeAtMs - Date.now(), 0), MAX_TIMER_MS)) : undefined;
  res.once('close', () => {
    clearTimeout(timer);
    upstream.destroy();
  });
  // A write to a client that is gone must not surface as an unhandled 'error'.
  res.on('error', () => upstream.destroy());
  return { end };
}
