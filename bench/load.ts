import autocannon from 'autocannon';
import type { Endpoint } from './mcp.js';

/** One measured run against one scenario (one or several endpoints loaded at once). */
export interface Measurement {
  /** Completed requests per second, summed over the endpoints. */
  readonly rps: number;
  /** Responses received (any status). */
  readonly requests: number;
  /** Milliseconds, from the merged latency histogram of all endpoints. */
  readonly latency: { readonly p50: number; readonly p99: number; readonly p99_9: number; readonly mean: number };
  /** Connection errors and timeouts (autocannon counts timeouts as errors too). */
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly statusCodes: Readonly<Record<string, number>>;
  /** Each endpoint on its own, to see that the load was really split evenly. */
  readonly perEndpoint: readonly { readonly url: string; readonly connections: number; readonly rps: number; readonly p99: number }[];
}

/**
 * Loads every endpoint at the same time with its share of `connections` (one autocannon
 * instance each, all in this process), for `seconds`. Latencies are merged exactly: each
 * instance returns its raw HDR histogram and autocannon.aggregateResult adds them, so p99 is
 * the p99 of all requests, not an average of per-instance percentiles.
 */
export async function measure(endpoints: readonly Endpoint[], body: string, connections: number, length: Length): Promise<Measurement> {
  const shares = splitEvenly(connections, endpoints.length);
  const amounts = 'requests' in length ? splitEvenly(length.requests, endpoints.length) : [];
  const raws = await Promise.all(
    endpoints.map((endpoint, i) => runInstance(endpoint, body, shares[i]!, 'requests' in length ? { requests: amounts[i]! } : length)),
  );
  const merged = autocannon.aggregateResult(raws, { url: endpoints.map((e) => e.url), connections });
  const statusCodes = Object.fromEntries(Object.entries(merged.statusCodeStats).map(([code, { count }]) => [code, count]));
  const rpsOf = (raw: autocannon.RawResult) => raw.totalCompletedRequests / raw.duration;
  return {
    rps: raws.reduce((sum, raw) => sum + rpsOf(raw), 0),
    requests: raws.reduce((sum, raw) => sum + raw.totalCompletedRequests, 0),
    latency: {
      p50: merged.latency.p50 ?? Number.NaN,
      p99: merged.latency.p99 ?? Number.NaN,
      p99_9: merged.latency.p99_9 ?? Number.NaN,
      mean: merged.latency.mean,
    },
    errors: merged.errors,
    timeouts: merged.timeouts,
    non2xx: merged.non2xx,
    statusCodes,
    perEndpoint: raws.map((raw, i) => ({
      url: endpoints[i]!.url,
      connections: shares[i]!,
      rps: rpsOf(raw),
      p99: autocannon.aggregateResult([raw], { url: endpoints[i]!.url }).latency.p99 ?? Number.NaN,
    })),
  };
}

/** A run lasts so many seconds, or until so many responses came back. */
export type Length = { readonly seconds: number } | { readonly requests: number };

function runInstance(endpoint: Endpoint, body: string, connections: number, length: Length): Promise<autocannon.RawResult> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: endpoint.url,
        connections,
        ...('seconds' in length ? { duration: length.seconds } : { amount: length.requests }),
        pipelining: 1,
        method: 'POST',
        headers: { ...endpoint.headers },
        body,
        idReplacement: true,
        skipAggregateResult: true,
      },
      (error, raw) => (error ? reject(error) : resolve(raw)),
    );
  });
}

/** 33 over 2 → [17, 16]. */
function splitEvenly(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}
