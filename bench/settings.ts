import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** What one `npm run bench` does; every scenario gets exactly the same load. */
export interface BenchSettings {
  /** Seconds of measured load per run. */
  readonly durationSeconds: number;
  /**
   * Seconds of unmeasured load right before each measured run; when above 0 there is also one
   * unmeasured pass of `durationSeconds` per scenario before the first run. 0: no warm-up at all.
   */
  readonly warmupSeconds: number;
  /** Concurrent keep-alive connections, split evenly between replicas where there are two. */
  readonly connections: number;
  /** Measured runs per scenario; the report gives medians. */
  readonly runs: number;
  readonly redisUrl: string;
  /** Where the JSON report goes. */
  readonly out: string;
}

// dist/bench/settings.js → the repository root, so the report lands in bench/results whatever the cwd.
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const USAGE = `usage: npm run bench -- [--duration S] [--warmup S] [--connections N] [--runs N] [--out FILE]

  --duration S      measured seconds per run            (env BENCH_DURATION, default 5)
  --warmup S        unmeasured seconds before each run  (env BENCH_WARMUP, default 1; 0 also
                    skips the initial unmeasured pass of --duration per scenario)
  --connections N   concurrent connections, >= 2        (env BENCH_CONNECTIONS, default 32)
  --runs N          runs per scenario, medians reported (env BENCH_RUNS, default 3)
  --out FILE        JSON report                         (env BENCH_OUT, default bench/results/latest.json)
  Redis for the two-replica scenario: REDIS_URL (default redis://127.0.0.1:6379).
`;

/** Flags win over environment variables, which win over defaults. Exits with usage on bad input. */
export function readSettings(argv: readonly string[] = process.argv.slice(2), env = process.env): BenchSettings {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        runs: { type: 'string' },
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
  return {
    durationSeconds: integer('duration', values.duration ?? env.BENCH_DURATION, 5, 1),
    warmupSeconds: integer('warmup', values.warmup ?? env.BENCH_WARMUP, 1, 0),
    // Two replicas get half each, so fewer than two would leave one idle.
    connections: integer('connections', values.connections ?? env.BENCH_CONNECTIONS, 32, 2),
    runs: integer('runs', values.runs ?? env.BENCH_RUNS, 3, 1),
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
