import type { Server, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RelayedStream } from '../proxy/stream-gate.js';

/**
 * Requests in flight and the streams open through the gateway, for a graceful stop: readiness
 * fails first, then the listener stops accepting, requests get a grace period to finish, and
 * only then are the streams (which never finish by themselves) ended cleanly.
 */
export class Lifecycle {
  private state: 'serving' | 'draining' = 'serving';
  /** Every response not closed yet (a Set, not a count: a fatal error logs each, see Gateway.interrupt). */
  private readonly open = new Set<ServerResponse>();
  /** Every SSE stream open; `listening` ones (GET) never end by themselves. */
  private readonly streams = new Set<RelayedStream>();
  private listening = 0;
  private wake: (() => void) | undefined;

  get draining(): boolean {
    return this.state === 'draining';
  }

  get requestsInFlight(): number {
    return this.open.size;
  }

  /** The responses of the requests in flight, oldest first. */
  openResponses(): ServerResponse[] {
    return [...this.open];
  }

  /**
   * Counts a request in flight until requestFinished (called when its response closes, from the
   * 'close' listener the access log shares). While draining, asks the client not to reuse the
   * connection.
   */
  requestStarted(res: ServerResponse): void {
    this.open.add(res);
    if (this.draining) res.setHeader('connection', 'close');
  }

  /** False when the request was already finished (a response interrupted, then closed). */
  requestFinished(res: ServerResponse): boolean {
    if (!this.open.delete(res)) return false;
    this.wake?.();
    return true;
  }

  /**
   * Registers a stream to end at shutdown, until streamClosed. A `listening` stream (the GET
   * stream) is not waited for: it would never finish. Any other (a POST answered as SSE) is a
   * request in flight like the rest, and gets the grace period.
   */
  streamOpened(stream: RelayedStream): void {
    this.streams.add(stream);
    if (stream.listening) this.listening += 1;
  }

  streamClosed(stream: RelayedStream): void {
    if (!this.streams.delete(stream)) return;
    if (stream.listening) this.listening -= 1;
    this.wake?.();
  }

  /** Readiness fails from now on (load balancers stop sending new requests). */
  beginDrain(): void {
    this.state = 'draining';
  }

  /**
   * Stops `server` accepting, waits up to `gracePeriodMs` for every request that is not an open
   * stream to finish, ends the streams cleanly, gives them a moment to flush, then closes what
   * is left. Resolves once the server holds no connection.
   */
  async stop(server: Server, options: { drainDelayMs: number; gracePeriodMs: number }): Promise<void> {
    this.beginDrain();
    if (options.drainDelayMs > 0) await sleep(options.drainDelayMs);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await this.until(() => this.open.size <= this.listening, options.gracePeriodMs);
    for (const stream of [...this.streams]) stream.end();
    await this.until(() => this.open.size === 0, 1_000);
    server.closeAllConnections();
    await closed;
  }

  private async until(done: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(100, deadline - Date.now()));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}
