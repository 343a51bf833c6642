import type { ServerResponse } from 'node:http';
import { Refusal } from '../errors.js';
import { recordOf } from './gateway-response.js';

/** Response, body, response, body…: two slots per answer, no object made for it. */
let waiting: (ServerResponse | Buffer | readonly Buffer[])[] = [];

/**
 * Whole answers wait for the end of the event loop's I/O phase and then leave together, one
 * write each, rather than one at a time as their upstream answers are read.
 *
 * On loopback (a sidecar) or any busy host, a write to a client that is asleep pays for waking
 * it; answers written back to back find it already awake. Upstream answers come in bursts (one
 * poll reads several sockets), so writing them in the check phase that follows wakes the client
 * side once per burst instead of once per answer. The wait is the rest of this turn's I/O
 * callbacks, never a timer: `npm run bench` measured it worth about 3% in requests per second
 * on small calls, with no CPU cost (docs/performance.md, item 20). Upstream requests are batched
 * the same way by readBody's wait for the body.
 */
export function endTogether(res: ServerResponse, body: Buffer | readonly Buffer[]): void {
  if (waiting.length === 0) setImmediate(endWaiting);
  waiting.push(res, body);
}

function endWaiting(): void {
  const batch = waiting;
  waiting = [];
  for (let i = 0; i < batch.length; i += 2) {
    const res = batch[i] as ServerResponse;
    // A client that left meanwhile has nothing to read: its response went with the socket.
    if (res.destroyed || res.writableEnded) continue;
    try {
      end(res, batch[i + 1] as Buffer | readonly Buffer[]);
    } catch (error) {
      // Not expected (writeHead validated the head). One bad answer must not strand the others,
      // and its access line says why it was cut, as a relay failure before the queue did.
      const context = recordOf(res);
      if (context) context.refusal = new Refusal('upstream_unreachable', `Upstream answer could not be relayed (${(error as Error).message})`);
      res.destroy();
    }
  }
}

function end(res: ServerResponse, body: Buffer | readonly Buffer[]): void {
  if (Buffer.isBuffer(body)) {
    res.end(body);
    return;
  }
  // Corked: the parts leave in one write, with the head.
  res.cork();
  for (const part of body) res.write(part);
  res.end();
}
