/**
 * Child process: one fixed-rate run (bench/paced.ts), in a process of its own so that the
 * latency it measures never includes a garbage collection of the benchmark's main process,
 * whose heap holds everything else the benchmark did. Usage: paced-process.js '<{"endpoints":
 * […], "body": …, "rate": N, "seconds": S, "warmupSeconds": W}>'. Prints one PacedMeasurement per
 * endpoint, as a JSON array.
 */
import type { Endpoint } from './mcp.js';
import { measurePacedAcross } from './paced.js';

interface Options {
  readonly endpoints: readonly Endpoint[];
  readonly body: string;
  readonly rate: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
if (options.warmupSeconds > 0) await measurePacedAcross(options.endpoints, options.body, options.rate, options.warmupSeconds);
const measured = await measurePacedAcross(options.endpoints, options.body, options.rate, options.seconds);
process.stdout.write(`${JSON.stringify(measured)}\n`);
