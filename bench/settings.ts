import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { WorkloadId } from './mcp.js';

export type RowId = 'a' | 'b' | 'b-node' | 'b-undici' | 'c' | 'c-quiet' | 'c-base' | 'c-all' | 'd' | 'e' | 'f' | 'g';
export const ROW_IDS: readonly RowId[] = ['a', 'b', 'b-node', 'b-undici', 'c', 'c-quiet', 'c-base', 'c-all', 'd', 'e', 'f', 'g'];
export const WORKLOAD_IDS: readonly WorkloadId[] = ['call', 'call-lean', 'list', 'sse'];
export type Phase = 'fixed-rate' | 'streams' | 'alloc' | 'startup';
export const PHASES: readonly Phase[] = ['fixed-rate', 'streams', 'alloc', 'startup'];

/** What one `npm run bench` does; every row of a workload gets exactly the same load. */
export interface BenchSettings {
  /** Seconds of measured load per run. */
  readonly durationSeconds: number;
  /**
   * Seconds per fixed-rate run: longer than a saturated run, because its p99 is the figure that
   * matters and 3 s at half load holds too few requests past it (see docs/performance.md).
   */
  readonly rateDurationSeconds: number;
  /**
   * The fixed rate as a fraction of saturation: the lower of rows b's and c's saturated req/s on
   * the workload (report.ts rateBasisOf). The p99 target is judged only at
   * 0.5 (half of saturation); other fractions show how the p99 gap moves with load.
   */
  readonly rateFraction: number;
  /** Runs of rows b and c interleaved at the fixed rate (half of the p99 target's measurement); 0: none. */
  readonly interleavedRuns: number;
  /**
   * The rows each interleaved with row b in turn (c by default). Only b against c is judged
   * against the p99 target; another row (c-quiet, b-node, c-base) shows, under the same stalls,
   * how much of that difference is logging, the forwarding path or the build.
   */
  readonly interleaveWith: readonly RowId[];
  /**
   * Seconds of unmeasured load right before each measured run; when above 0 there is also one
   * unmeasured pass of twice that per row and workload before the first run. 0: no warm-up.
   */
  readonly warmupSeconds: number;
  /** Concurrent keep-alive connections, split evenly between replicas where there are two. */
  readonly connections: number;
  /** Measured runs per row and workload (and per fixed-rate row); the report gives medians. */
  readonly runs: number;
  readonly workloads: readonly WorkloadId[];
  /** Rows to run; f (two replicas on Redis) only with --redis. */
  readonly rows: readonly RowId[];
  readonly skip: readonly Phase[];
  /** Idle SSE streams to hold open through the gateway (and the bare proxy) for the memory figure. */
  readonly streams: number;
  /** Another build's dist/src/bin.js, run as row c-base beside row c (an A/B under the same load); undefined: no row c-base. */
  readonly baselineBin: string | undefined;
  /** Requests per allocation measurement (tools/call; tools/list gets a fifth). */
  readonly allocRequests: number;
  /** Gateway starts timed from spawn to ready. */
  readonly startupRuns: number;
  /** Where the main gateways write --cpu-prof profiles (at exit); undefined: not profiled. */
  readonly cpuProfDir: string | undefined;
  readonly redisUrl: string;
  /** Where the JSON report goes. */
  readonly out: string;
}

// dist/bench/settings.js → the repository root, so the report lands in bench/results whatever the cwd.
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const USAGE = `usage: npm run bench -- [options]

  --duration S        measured seconds per run                 (BENCH_DURATION, default 3)
  --rate-duration S   measured seconds per fixed-rate run      (BENCH_RATE_DURATION, default 10)
  --rate-fraction F   the fixed rate as a fraction of saturation (the lower of rows b's
                      and c's saturated req/s on that workload), > 0 and <= 1
                      (BENCH_RATE_FRACTION, default 0.5; the p99 target is judged
                      only at 0.5)
  --interleaved-runs N
                      fixed-rate runs of rows b and c together, every other request
                      to each: with the separate fixed-rate runs, the p99 target's
                      measurement (BENCH_INTERLEAVED_RUNS, default 7; 0: none)
  --interleave-with LIST
                      rows run interleaved with row b, each in turn (BENCH_INTERLEAVE_WITH,
                      default c; must be among --rows; not a, b or f): c-quiet, say,
                      shows how much of (c)'s p99 difference is logging. Only b with c
                      is judged against the p99 target
  --warmup S          unmeasured seconds before each run       (BENCH_WARMUP, default 1; 0: no
                      warm-up, and no first pass of 2 x S per row and workload either)
  --connections N     concurrent connections, >= 2             (BENCH_CONNECTIONS, default 32)
  --runs N            runs per row and workload, medians       (BENCH_RUNS, default 3)
  --workloads LIST    call,call-lean,list,sse                  (BENCH_WORKLOADS, default all;
                      call-lean: the small call from a bare upstream, not the SDK)
  --rows LIST         a,b,b-node,b-undici,c,c-quiet,c-all,d,e,f,g (BENCH_ROWS, default all
                      but f; gateways log at their default level, info, into a pipe a
                      reader drains; c-quiet: row c at log level warn; g: row c's
                      gateway and token, its upstream credential from a cached token
                      exchange; small calls only)
  --baseline DIR      add row c-base: row c's gateway run from another checkout's build
                      (DIR/dist/src/bin.js; run npm run build there first), to compare two
                      builds under the same load (BENCH_BASELINE)
  --redis             add row f: two gateways sharing Redis    (BENCH_REDIS=1; REDIS_URL, default
                      redis://127.0.0.1:6379)
  --skip LIST         fixed-rate,streams,alloc,startup         (BENCH_SKIP)
  --streams N         idle SSE streams for the memory figure   (BENCH_STREAMS, default 10000; 0 skips)
  --alloc-requests N  requests per allocation measurement      (BENCH_ALLOC_REQUESTS, default 10000)
  --startup-runs N    timed gateway starts                     (BENCH_STARTUP_RUNS, default 3)
  --cpu-prof DIR      run the gateways of rows c and d, and the bare hops, with --cpu-prof;
                      profiles to DIR (BENCH_CPU_PROF); summarise with
                      node dist/bench/profile-summary.js DIR
  --out FILE          JSON report                              (BENCH_OUT, default bench/results/latest.json)
`;

/** Flags win over environment variables, which win over defaults. Exits with usage on bad input. */
export function readSettings(argv: readonly string[] = process.argv.slice(2), env = process.env): BenchSettings {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        duration: { type: 'string' },
        'rate-duration': { type: 'string' },
        'rate-fraction': { type: 'string' },
        'interleaved-runs': { type: 'string' },
        'interleave-with': { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        runs: { type: 'string' },
        workloads: { type: 'string' },
        rows: { type: 'string' },
        redis: { type: 'boolean' },
        skip: { type: 'string' },
        streams: { type: 'string' },
        'alloc-requests': { type: 'string' },
        'startup-runs': { type: 'string' },
        'cpu-prof': { type: 'string' },
        baseline: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    usageError((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const redis = values.redis === true || env.BENCH_REDIS === '1';
  const listed = list('rows', values.rows ?? env.BENCH_ROWS, ROW_IDS, ROW_IDS.filter((row) => row !== 'f' && row !== 'c-base'));
  const cpuProf = values['cpu-prof'] ?? env.BENCH_CPU_PROF;
  const baseline = values.baseline ?? env.BENCH_BASELINE;
  if (listed.includes('c-base') && !baseline) usageError('row c-base needs --baseline DIR (another checkout, built)');
  const baselineBin = baseline ? resolve(baseline, 'dist/src/bin.js') : undefined;
  if (baselineBin !== undefined && !existsSync(baselineBin)) usageError(`--baseline: ${baselineBin} not found (run npm run build in ${resolve(baseline!)})`);
  const withBase = baselineBin !== undefined && !listed.includes('c-base') ? [...listed, 'c-base' as const] : listed;
  const rows = redis && !withBase.includes('f') ? [...withBase, 'f' as const] : withBase;
  const interleaveRaw = values['interleave-with'] ?? env.BENCH_INTERLEAVE_WITH;
  const interleaveWith = list('interleave-with', interleaveRaw, ROW_IDS, ['c']);
  if (interleaveWith.length === 0) usageError('--interleave-with: name at least one row (--interleaved-runs 0 runs none)');
  for (const row of interleaveWith) {
    // a is no proxy (the direct row: nothing of b's to compare with); f splits its load over two replicas.
    if (row === 'a' || row === 'b' || row === 'f') usageError(`--interleave-with: row ${row} cannot be interleaved with row b`);
    // Asked for by name, a row must be run; the default (c) is simply skipped when it is not.
    if (interleaveRaw && !rows.includes(row)) usageError(`--interleave-with: row ${row} is not among the rows run (--rows)`);
  }
  return {
    durationSeconds: integer('duration', values.duration ?? env.BENCH_DURATION, 3, 1),
    rateDurationSeconds: integer('rate-duration', values['rate-duration'] ?? env.BENCH_RATE_DURATION, 10, 1),
    rateFraction: fraction('rate-fraction', values['rate-fraction'] ?? env.BENCH_RATE_FRACTION, 0.5),
    interleavedRuns: integer('interleaved-runs', values['interleaved-runs'] ?? env.BENCH_INTERLEAVED_RUNS, 7, 0),
    interleaveWith,
    warmupSeconds: integer('warmup', values.warmup ?? env.BENCH_WARMUP, 1, 0),
    // Two replicas get half each, so fewer than two would leave one idle.
    connections: integer('connections', values.connections ?? env.BENCH_CONNECTIONS, 32, 2),
    runs: integer('runs', values.runs ?? env.BENCH_RUNS, 3, 1),
    workloads: list('workloads', values.workloads ?? env.BENCH_WORKLOADS, WORKLOAD_IDS, WORKLOAD_IDS),
    rows,
    baselineBin,
    skip: list('skip', values.skip ?? env.BENCH_SKIP, PHASES, []),
    streams: integer('streams', values.streams ?? env.BENCH_STREAMS, 10_000, 0),
    allocRequests: integer('alloc-requests', values['alloc-requests'] ?? env.BENCH_ALLOC_REQUESTS, 10_000, 0),
    startupRuns: integer('startup-runs', values['startup-runs'] ?? env.BENCH_STARTUP_RUNS, 3, 0),
    cpuProfDir: cpuProf ? resolve(cpuProf) : undefined,
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    out: resolve(REPO_ROOT, values.out ?? env.BENCH_OUT ?? 'bench/results/latest.json'),
  };
}

function integer(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) usageError(`--${name} must be a whole number >= ${min}, got ${JSON.stringify(raw)}`);
  return value;
}

function fraction(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!(value > 0 && value <= 1)) usageError(`--${name} must be a number > 0 and <= 1, got ${JSON.stringify(raw)}`);
  return value;
}

function list<T extends string>(name: string, raw: string | undefined, allowed: readonly T[], fallback: readonly T[]): readonly T[] {
  if (raw === undefined || raw === '') return fallback;
  const items = raw.split(',').map((item) => item.trim()).filter(Boolean);
  const unknown = items.filter((item) => !(allowed as readonly string[]).includes(item));
  if (unknown.length > 0) usageError(`--${name}: unknown ${unknown.join(', ')} (one or more of ${allowed.join(', ')})`);
  return items as T[];
}

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

/** The Redis URL without its password, for printing and for the report. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
