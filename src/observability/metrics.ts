import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ConfigHealth } from '../config/watch.js';
import type { TokenFailure } from '../errors.js';
import type { KeyValueStore } from '../store/types.js';
import type { Decision } from '../policy/types.js';
import { RouteHistogram } from './route-histogram.js';

/**
 * The gateway's Prometheus metrics (prom-client: the standard Node client, text exposition
 * format). One registry per gateway, so two gateways in one process (tests) never share
 * counters. Labels are closed sets or config names only: never a subject, token or tool
 * argument, so cardinality is bounded by the config.
 */
export class GatewayMetrics {
  readonly registry = new Registry();

  // Every request counts itself and its decisions: kept as plain counts, handed to prom-client
  // at scrape time (its inc() validates and hashes the labels on every call).
  private readonly requestCounts = new NestedCounts(['route', 'method', 'status']);
  private readonly decisionCounts = new NestedCounts(['route', 'effect', 'reason']);
  private readonly tokenFailures = new Counter({
    name: 'mcp_gateway_token_failures_total',
    help: 'Requests refused for their token, by route and reason (missing, or which check failed).',
    labelNames: ['route', 'reason'] as const,
    registers: [this.registry],
  });
  // Every forwarded request observes it: counted in plain arrays, handed over at scrape time.
  private readonly upstreamLatency = new RouteHistogram({
    name: 'mcp_gateway_upstream_response_seconds',
    help: "Time from forwarding a request to the upstream's response headers, by route.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly sseStreams = new Gauge({
    name: 'mcp_gateway_sse_streams_open',
    help: 'Server-sent event streams open through the gateway, by route.',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  // Counted only when an upstream fails, so nothing is added to a request that goes well.
  private readonly upstreamErrors = new Counter({
    name: 'mcp_gateway_upstream_errors_total',
    help: 'Forwarded requests the upstream failed, by route and reason: unreachable (no answer, or one that could not be relayed: 502), timeout (no answer within timeouts.upstreamResponse: 504), server-error (it answered 5xx).',
    labelNames: ['route', 'reason'] as const,
    registers: [this.registry],
  });
  private readonly jwksRefreshes = new Counter({
    name: 'mcp_gateway_jwks_refreshes_total',
    help: "Fetches of an issuer's JWKS, by issuer and result (ok, failed).",
    labelNames: ['issuer', 'result'] as const,
    registers: [this.registry],
  });

  /**
   * The store and the config watcher keep their own counts; they are read at scrape time, so
   * neither needs to know about metrics.
   */
  constructor(sources: MetricSources, options: { processMetrics?: boolean } = {}) {
    const { store, configHealth, ready } = sources;
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    countedAtScrape(this.registry, this.requestCounts, {
      name: 'mcp_gateway_requests_total',
      help: 'HTTP requests answered on MCP routes, by route, HTTP method and status.',
      labelNames: ['route', 'method', 'status'],
    });
    countedAtScrape(this.registry, this.decisionCounts, {
      name: 'mcp_gateway_decisions_total',
      help: 'Authorization decisions on JSON-RPC messages, by route, effect (allow, step-up, deny) and reason.',
      labelNames: ['route', 'effect', 'reason'],
    });
    new Counter({
      name: 'mcp_gateway_store_errors_total',
      help: 'Store (Redis) calls that failed, or were refused at once while the store was down.',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(store.failedCalls);
      },
    });
    new Gauge({
      name: 'mcp_gateway_store_up',
      help: '1 while the store answers, 0 while it is unreachable (session-bound requests get 503 meanwhile). The memory store is always up.',
      registers: [this.registry],
      collect() {
        this.set(store.available === false ? 0 : 1);
      },
    });
    // Asked at scrape time, as GET /readyz asks: a replica that is not ready still serves
    // /metrics (Prometheus discovers not-ready endpoints too), so this shows why it left.
    if (ready) {
      new Gauge({
        name: 'mcp_gateway_ready',
        help: '1 when GET /readyz answers 200 (issuer keys fetched, the store takes a write, not shutting down), else 0. Checked at each scrape.',
        registers: [this.registry],
        async collect() {
          this.set((await ready()) ? 1 : 0);
        },
      });
    }
    new Counter({
      name: 'mcp_gateway_config_reloads_total',
      help: 'Config reloads, by result: applied, or refused (the last good config stays in force).',
      labelNames: ['result'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc({ result: 'applied' }, configHealth?.reloadsApplied ?? 0);
        this.inc({ result: 'refused' }, configHealth?.reloadsRefused ?? 0);
      },
    });
    new Gauge({
      name: 'mcp_gateway_config_last_reload_refused',
      help: '1 while the newest config files are refused (/readyz names the problems as file:line:col), else 0.',
      registers: [this.registry],
      collect() {
        this.set(configHealth?.refused ? 1 : 0);
      },
    });
  }

  request(route: string, method: string, status: number): void {
    this.requestCounts.add(route, method, status);
  }

  decision(route: string, decision: Decision): void {
    this.decisionCounts.add(route, decision.effect, decision.reason);
  }

  tokenFailure(route: string, reason: TokenFailure | 'missing' | 'dpop-proof'): void {
    this.tokenFailures.inc({ route, reason });
  }

  upstreamResponded(route: string, seconds: number): void {
    this.upstreamLatency.record(route, seconds);
  }

  upstreamFailed(route: string, reason: UpstreamFailure): void {
    this.upstreamErrors.inc({ route, reason });
  }

  streamOpened(route: string): void {
    this.sseStreams.inc({ route });
  }

  streamClosed(route: string): void {
    this.sseStreams.dec({ route });
  }

  jwksFetched(issuer: string, ok: boolean): void {
    this.jwksRefreshes.inc({ issuer, result: ok ? 'ok' : 'failed' });
  }

  /** The exposition text and its content type, for GET /metrics. */
  async exposition(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}

export interface MetricSources {
  readonly store: KeyValueStore;
  readonly configHealth?: ConfigHealth | undefined;
  /** Whether the replica is ready, as /readyz decides; `mcp_gateway_ready` is exported only with it. */
  readonly ready?: () => Promise<boolean>;
}

/** Why an upstream failed a request: a closed set, so the label stays bounded. */
export type UpstreamFailure = 'unreachable' | 'timeout' | 'server-error';

interface LabelledCount {
  readonly labels: Readonly<Record<string, string>>;
  count: number;
}

/**
 * Counts by three label values, found by three Map lookups on values the caller already holds:
 * no key string is built (and hashed) per count, as joining them would.
 */
class NestedCounts {
  private readonly counts = new Map<string, Map<string, Map<string | number, LabelledCount>>>();

  constructor(private readonly names: readonly [string, string, string]) {}

  add(first: string, second: string, third: string | number): void {
    let seconds = this.counts.get(first);
    if (seconds === undefined) this.counts.set(first, (seconds = new Map()));
    let thirds = seconds.get(second);
    if (thirds === undefined) seconds.set(second, (thirds = new Map()));
    const counted = thirds.get(third);
    if (counted) counted.count++;
    else {
      const [a, b, c] = this.names;
      thirds.set(third, { labels: { [a]: first, [b]: second, [c]: String(third) }, count: 1 });
    }
  }

  *values(): IterableIterator<LabelledCount> {
    for (const seconds of this.counts.values()) for (const thirds of seconds.values()) yield* thirds.values();
  }
}

/** A counter whose values are kept in `counts` and read when Prometheus scrapes. */
function countedAtScrape(registry: Registry, counts: NestedCounts, options: { name: string; help: string; labelNames: readonly string[] }): void {
  new Counter({
    ...options,
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, count } of counts.values()) this.inc(labels, count);
    },
  });
}
