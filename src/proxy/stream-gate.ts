import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Readable, type Transform } from 'node:stream';

/** setTimeout cannot wait longer than this (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface StreamGate {
  /** What to relay to the client. */
  readonly readable: Readable;
  /** Ends the stream cleanly now: the client sees a complete response and may reconnect. */
  end(): void;
}

/**
 * Relays `upstream` through a gate that can be closed cleanly: at `closeAtMs` (a token's
 * expiry), or when `end()` is called (shutdown). The client sees the stream end instead of a
 * destroyed connection. When the client goes away first, the upstream stream is released too.
 * `through` (a filter) is the gate when given, so a filtered stream costs one stream object.
 */
export function openStreamGate(upstream: IncomingMessage, res: ServerResponse, closeAtMs: number, through?: Transform): StreamGate {
  const gate = through ?? new PassThrough();
  let closedByGate = false;
  upstream.pipe(gate);
  upstream.once('close', () => {
    if (!closedByGate && !upstream.readableEnded) gate.destroy(new Error('upstream stream closed early'));
  });
  const end = () => {
    if (closedByGate) return;
    closedByGate = true;
    clearTimeout(timer);
    upstream.unpipe(gate);
    upstream.destroy();
    gate.end();
  };
  const timer = Number.isFinite(closeAtMs) ? setTimeout(end, Math.min(Math.max(closeAtMs - Date.now(), 0), MAX_TIMER_MS)) : undefined;
  res.once('close', () => {
    clearTimeout(timer);
    upstream.destroy();
  });
  return { readable: gate, end };
}
