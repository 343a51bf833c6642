import { Agent, request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
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
 *
 * Given several endpoints, request k goes to endpoint k mod n, and each endpoint's latencies are
 * kept apart: the rows then share every stall of the machine, the upstream and the generator,
 * request by request, and their difference is what each row adds (see measureInterleaved).
 */
export interface PacedMeasurement {
  /** Requests per second asked for (of this endpoint), and answered per second. */
  readonly rate: number;
  readonly achievedRps: number;
  readonly requests: number;
  /** Milliseconds from when each request was due to the end of its answer. */
  readonly latency: { readonly p50: number; readonly p99: number; readonly p99_9: number; readonly max: number };
  readonly errors: number;
  /** Why requests failed: the error's code (ECONNRESET…) or message, and how many times. */
  readonly errorCauses: Readonly<Record<string, number>>;
  readonly non2xx: number;
  /**
   * The load generator's own delays, in ms: how late requests left it (p99, max), and its event
   * loop's delay (p99, max). A stall here is counted in every request due during it, whichever
   * row is measured, so a run with a high generator lag says more about the machine than the row.
   */
  readonly generator: { readonly sendLagP99: number; readonly sendLagMax: number; readonly loopDelayP99: number; readonly loopDelayMax: number };
}

const TICK_MS = 1;

/** One endpoint at `rate` requests per second. */
export async function measurePaced(endpoint: Endpoint, body: string, rate: number, seconds: number): Promise<PacedMeasurement> {
  return (await measurePacedAcross([endpoint], body, rate, seconds))[0]!;
}

/** `rate` requests per second in all, taking turns between the endpoints; one measurement each. */
export function measurePacedAcross(endpoints: readonly Endpoint[], body: string, rate: number, seconds: number): Promise<PacedMeasurement[]> {
  const targets = endpoints.map((endpoint) => ({ endpoint, url: new URL(endpoint.url) }));
  const n = targets.length;
  // Enough sockets that the pool never queues below the rate; LIFO keeps few of them warm.
  const agent = new Agent({ keepAlive: true, scheduling: 'lifo', maxSockets: 512 });
  const total = Math.max(n, Math.round(rate * seconds));
  const perTarget = targets.map((_, i) => ({ latencies: new Float64Array(Math.ceil((total - i) / n)), done: 0, non2xx: 0, lastAnswerAt: 0, errorCauses: {} as Record<string, number> }));
  const sendLags = new Float64Array(total);
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  let sent = 0;
  let settled = 0;
  const start = performance.now();

  return new Promise((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(pacer);
      clearTimeout(deadline);
      agent.destroy();
      loopDelay.disable();
      const lagAt = quantile(sendLags.subarray(0, sent).sort());
      const generator = { sendLagP99: lagAt(0.99), sendLagMax: lagAt(1), loopDelayP99: loopDelay.percentile(99) / 1e6, loopDelayMax: loopDelay.max / 1e6 };
      resolve(
        perTarget.map((own) => {
          const at = quantile(own.latencies.subarray(0, own.done).sort());
          return {
            rate: rate / n,
            achievedRps: own.done / ((own.lastAnswerAt - start) / 1000),
            requests: own.done,
            latency: { p50: at(0.5), p99: at(0.99), p99_9: at(0.999), max: at(1) },
            // Failed, and never answered in time.
            errors: own.latencies.length - own.done,
            errorCauses: own.errorCauses,
            non2xx: own.non2xx,
            generator,
          };
        }),
      );
    };
    const settle = (target: number, dueAt: number, ok: boolean, status: number, error?: Error) => {
      const now = performance.now();
      const own = perTarget[target]!;
      if (error) {
        const cause = (error as NodeJS.ErrnoException).code ?? error.message;
        own.errorCauses[cause] = (own.errorCauses[cause] ?? 0) + 1;
      }
      // A failure counts among the errors: the requests due that were never answered.
      if (ok) {
        if (status < 200 || status >= 300) own.non2xx++;
        own.latencies[own.done++] = now - dueAt;
        own.lastAnswerAt = now;
      }
      if (++settled === total) finish();
    };
    const send = (k: number) => {
      const dueAt = start + (k * 1000) / rate;
      sendLags[k] = performance.now() - dueAt;
      const target = k % n;
      const { endpoint, url } = targets[target]!;
      let answered = false;
      const once = (ok: boolean, status: number, error?: Error) => {
        if (answered) return;
        answered = true;
        settle(target, dueAt, ok, status, error);
      };
      const payload = Buffer.from(body.replaceAll('[<id>]', `paced-${k}`));
      const req = request(
        { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...endpoint.headers, 'content-length': payload.length } },
        (res) => {
          res.on('data', () => undefined);
          res.once('end', () => once(true, res.statusCode ?? 0));
          res.once('error', (error) => once(false, 0, error));
        },
      );
      req.once('error', (error) => once(false, 0, error));
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

function quantile(sorted: Float64Array): (q: number) => number {
  return (q) => (sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
}
