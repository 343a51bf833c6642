import type { Role } from './cpu.js';
import type { Measurement } from './load.js';
import type { ScenarioId } from './stack.js';

export interface RunRecord {
  readonly measurement: Measurement;
  /** CPU seconds each role used during the run. */
  readonly cpuSeconds: Partial<Record<Role, number>>;
}

export interface ScenarioResult {
  readonly id: ScenarioId;
  readonly label: string;
  readonly endpoints: readonly string[];
  readonly runs: readonly RunRecord[];
  /** Lines the gateways of this row logged (at level warn, any line is a warning or worse). */
  readonly gatewayWarnings: number;
}

export interface ScenarioSummary {
  readonly id: ScenarioId;
  readonly label: string;
  /** Median over runs of each figure separately. */
  readonly median: { readonly rps: number; readonly p50: number; readonly p99: number; readonly p99_9: number };
  /** Summed over all measured runs. */
  readonly totals: { readonly requests: number; readonly errors: number; readonly timeouts: number; readonly non2xx: number };
  /** This row ÷ row (a) and ÷ row (b): rps above 1 is faster, latency above 1 is slower. */
  readonly ratios: { readonly vsDirect: Ratios; readonly vsProxy: Ratios };
  /** Median over runs of CPU time per completed request, in microseconds, per process role. */
  readonly cpuMicrosPerRequest: Partial<Record<Role, number>>;
  readonly gatewayWarnings: number;
}

interface Ratios {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
}

export const HEADLINE = 'two replicas on Redis ÷ one replica on memory';

export interface Headline {
  readonly name: typeof HEADLINE;
  /** (d) requests/second ÷ (c) requests/second. */
  readonly rpsRatio: number;
  readonly p50Ms: { readonly memory: number; readonly redis: number };
  readonly p99Ms: { readonly memory: number; readonly redis: number };
}

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((x, y) => x - y);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const ROLES: readonly Role[] = ['gateway', 'proxy', 'upstream', 'redis', 'load generator'];

export function summarize(results: readonly ScenarioResult[]): { scenarios: ScenarioSummary[]; headline: Headline } {
  const base = results.map((result) => {
    const m = result.runs.map((run) => run.measurement);
    const sum = (pick: (x: Measurement) => number) => m.reduce((total, x) => total + pick(x), 0);
    const cpuMicrosPerRequest: Partial<Record<Role, number>> = {};
    for (const role of ROLES) {
      if (!result.runs.some((run) => role in run.cpuSeconds)) continue;
      cpuMicrosPerRequest[role] = median(result.runs.map((run) => ((run.cpuSeconds[role] ?? Number.NaN) * 1e6) / run.measurement.requests));
    }
    return {
      id: result.id,
      label: result.label,
      median: {
        rps: median(m.map((x) => x.rps)),
        p50: median(m.map((x) => x.latency.p50)),
        p99: median(m.map((x) => x.latency.p99)),
        p99_9: median(m.map((x) => x.latency.p99_9)),
      },
      totals: { requests: sum((x) => x.requests), errors: sum((x) => x.errors), timeouts: sum((x) => x.timeouts), non2xx: sum((x) => x.non2xx) },
      cpuMicrosPerRequest,
      gatewayWarnings: result.gatewayWarnings,
    };
  });
  const row = (id: ScenarioId) => base.find((summary) => summary.id === id)!;
  const ratios = (of: (typeof base)[number], to: (typeof base)[number]): Ratios => ({
    rps: of.median.rps / to.median.rps,
    p50: of.median.p50 / to.median.p50,
    p99: of.median.p99 / to.median.p99,
  });
  const scenarios = base.map((summary) => ({ ...summary, ratios: { vsDirect: ratios(summary, row('a')), vsProxy: ratios(summary, row('b')) } }));
  const memory = row('c');
  const redis = row('d');
  return {
    scenarios,
    headline: {
      name: HEADLINE,
      rpsRatio: redis.median.rps / memory.median.rps,
      p50Ms: { memory: memory.median.p50, redis: redis.median.p50 },
      p99Ms: { memory: memory.median.p99, redis: redis.median.p99 },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------------

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const ms = (n: number) => (Number.isFinite(n) ? String(Math.round(n * 10) / 10) : 'n/a');
const ratio = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  // First column left-aligned (labels), the rest right-aligned (numbers).
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatReport(scenarios: readonly ScenarioSummary[], headline: Headline, runs: number): string {
  const name = (s: ScenarioSummary) => `(${s.id}) ${s.label}`;
  const throughput = table(
    ['scenario', 'req/s', '÷(a)', '÷(b)', 'p50 ms', 'p99 ms', 'p99.9 ms', 'errors', 'non-2xx'],
    scenarios.map((s) => [
      name(s),
      int(s.median.rps),
      ratio(s.ratios.vsDirect.rps),
      ratio(s.ratios.vsProxy.rps),
      ms(s.median.p50),
      ms(s.median.p99),
      ms(s.median.p99_9),
      int(s.totals.errors),
      int(s.totals.non2xx),
    ]),
  );
  const cpu = table(
    ['CPU µs per request', ...ROLES],
    scenarios.map((s) => [name(s), ...ROLES.map((role) => (role in s.cpuMicrosPerRequest ? int(s.cpuMicrosPerRequest[role]!) : '-'))]),
  );
  const warnings = scenarios.filter((s) => s.gatewayWarnings > 0).map((s) => `  (${s.id}): gateways logged ${s.gatewayWarnings} warning line(s); see the gateway output`);
  return [
    throughput,
    '',
    `${HEADLINE}: ${ratio(headline.rpsRatio)} × requests/s` +
      `  (p50 ${ms(headline.p50Ms.memory)} → ${ms(headline.p50Ms.redis)} ms, p99 ${ms(headline.p99Ms.memory)} → ${ms(headline.p99Ms.redis)} ms)`,
    '',
    cpu,
    '',
    `Medians of ${runs} run(s) per scenario, each figure separately; errors and non-2xx summed over all runs.`,
    'Row (d): two autocannon instances at once, half the connections each; req/s summed, latency',
    'percentiles from the two latency histograms merged. ÷(a), ÷(b): req/s relative to rows (a), (b).',
    ...(warnings.length > 0 ? ['', 'Warnings:', ...warnings] : []),
  ].join('\n');
}
