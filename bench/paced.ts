import { Agent, request } from 'node:http';
import type { Endpoint } from './mcp.js';

/**
 * An open-loop load at a fixed rate: request k is due at start + k/rate, whether or not earlier
 * ones have been answered, and its latency is counted from when it was due (so a stall delays
 * every request behind it, as it would real clients: no coordinated omission).
 *
 * Not autocannon's `overallRate`: autocannon paces each connection by a per-second quota that
 * refills on a 1 s timer (lib/httpClient.js), so every connection fires its quota back to back
 * at the start of each second: a saturating burst, then idle. Its p99 at "half load" is the p99
 * of that burst.
 */
export interface PacedMeasurement {
  /** Requests per second asked for, and answered per second. */
  readonly rate: number;
  readonly achievedRps: number;
  readonly requests: number;
  /** Milliseconds from when each request was due to the end of its answer. */
  readonly latency: { readonly p50: number; readonly p99: number; readonly p99_9: number; readonly max: number };
  readonly errors: number;
  readonly non2xx: number;
}

const TICK_MS = 1;

export function measurePaced(endpoint: Endpoint, body: string, rate: number, seconds: number): Promise<PacedMeasurement> {
  const url = new URL(endpoint.url);
  // Enough sockets that the pool never queues below the rate; LIFO keeps few of them warm.
  const agent = new Agent({ keepAlive: true, scheduling: 'lifo', maxSockets: 512 });
  const total = Math.max(1, Math.round(rate * seconds));
  const latencies = new Float64Array(total);
  let sent = 0;
  let done = 0;
  let errors = 0;
  let non2xx = 0;
  const start = performance.now();
  let lastAnswerAt = start;

  return new Promise((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(pacer);
      clearTimeout(deadline);
      agent.destroy();
      const measured = latencies.subarray(0, done).sort();
      const at = (q: number) => (measured.length === 0 ? Number.NaN : measured[Math.min(measured.length - 1, Math.ceil(q * measured.length) - 1)]!);
      resolve({
        rate,
        achievedRps: done / ((lastAnswerAt - start) / 1000),
        requests: done,
        latency: { p50: at(0.5), p99: at(0.99), p99_9: at(0.999), max: at(1) },
        // Failed, and never answered in time.
        errors: total - done,
        non2xx,
      });
    };
    const settle = (dueAt: number, ok: boolean, status: number) => {
      const now = performance.now();
      if (!ok) errors++;
      else {
        if (status < 200 || status >= 300) non2xx++;
        latencies[done++] = now - dueAt;
        lastAnswerAt = now;
      }
      if (done + errors === total) finish();
    };
    const send = (k: number) => {
      const dueAt = start + (k * 1000) / rate;
      let answered = false;
      const once = (ok: boolean, status: number) => {
        if (answered) return;
        answered = true;
        settle(dueAt, ok, status);
      };
      const payload = Buffer.from(body.replaceAll('[<id>]', `paced-${k}`));
      const req = request(
        { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...endpoint.headers, 'content-length': payload.length } },
        (res) => {
          res.on('data', () => undefined);
          res.once('end', () => once(true, res.statusCode ?? 0));
          res.once('error', () => once(false, 0));
        },
      );
      req.once('error', () => once(false, 0));
      req.end(payload);
    };
    const pacer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
      while (sent < due) send(sent++);
    }, TICK_MS);
    // Whatever is still unanswered well after the last request was due counts as an error.
    const deadline = setTimeout(finish, seconds * 1000 + 10_000);
  });
}
