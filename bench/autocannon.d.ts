/**
 * The slice of autocannon 9 the benchmark uses (the package ships no type declarations and
 * there is no @types package for v9). Shapes follow autocannon's README and lib/run.js.
 */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Options {
      url: string | string[];
      connections?: number;
      /** Seconds. */
      duration?: number;
      /** Stop after this many requests (instead of a duration). */
      amount?: number;
      pipelining?: number;
      method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
      headers?: Record<string, string>;
      body?: string | Buffer;
      /** Replaces every `[<id>]` in the request with a fresh unique id, per request. */
      idReplacement?: boolean;
      /** Return raw (encoded) histograms so several instances can be merged with aggregateResult. */
      skipAggregateResult?: boolean;
      /** Seconds. */
      timeout?: number;
    }

    /** What an instance run with `skipAggregateResult` hands back. */
    interface RawResult {
      latencies: string;
      totalCompletedRequests: number;
      totalRequests: number;
      errors: number;
      timeouts: number;
      non2xx: number;
      statusCodeStats: Record<string, { count: number }>;
      /** Seconds, as measured by autocannon. */
      duration: number;
    }

    /** Percentiles are keyed p50, p99, p99_9, … ; values in milliseconds. */
    interface Histogram {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      totalCount: number;
      [percentile: `p${string}`]: number;
    }

    interface Result {
      latency: Histogram;
      errors: number;
      timeouts: number;
      non2xx: number;
      statusCodeStats: Record<string, { count: number }>;
    }

    interface Instance extends EventEmitter {
      stop(): void;
    }

    function aggregateResult(results: RawResult[], options: Partial<Options>): Result;
  }

  function autocannon(options: autocannon.Options, callback: (error: Error | null, result: autocannon.RawResult) => void): autocannon.Instance;

  export = autocannon;
}
