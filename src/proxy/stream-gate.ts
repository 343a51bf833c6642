import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';

/** setTimeout cannot wait longer than this (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Relays `upstream` through a gate that closes cleanly at `closeAtMs`: the client sees the
 * stream end (and may reconnect), instead of a destroyed connection. When the client goes away
 * first, the upstream stream is released too. Returns the gate to read from.
 */
export function closeStreamAt(upstream: IncomingMessage, res: ServerResponse, closeAtMs: number): Readable {
  const gate = new PassThrough();
  let closedByGate = false;
  upstream.pipe(gate);
  upstream.once('close', () => {
    if (!closedByGate && !upstream.readableEnded) gate.destroy(new Error('upstream stream closed early'));
  });
  const timer = setTimeout(() => {
    closedByGate = true;
    upstream.unpipe(gate);
    upstream.destroy();
    gate.end();
  }, Math.min(Math.max(closeAtMs - Date.now(), 0), MAX_TIMER_MS));
  res.once('close', () => {
    clearTimeout(timer);
    upstream.destroy();
  });
  return gate;
}
