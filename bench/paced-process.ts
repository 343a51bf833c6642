/**
 * Child process: one fixed-rate run (bench/paced.ts), in a process of its own so that the
 * latency it measures never includes a garbage collection of the benchmark's main process,
 * whose heap holds everything else the benchmark did. Usage: paced-process.js '<{"endpoint": …,
 * "body": …, "rate": N, "seconds": S, "warmupSeconds": W}>'. Prints the PacedMeasurement as JSON.
 */
import type { Endpoint } from './mcp.js';
import { measurePaced } from './paced.js';

interface Options {
  readonly endpoint: Endpoint;
  readonly body: string;
  readonly rate: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
if (options.warmupSeconds > 0) await measurePaced(options.endpoint, options.body, options.rate, options.warmupSeconds);
const measured = await measurePaced(options.endpoint, options.body, options.rate, options.seconds);
process.stdout.write(`${JSON.stringify(measured)}\n`);
