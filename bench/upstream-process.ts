/**
 * Child process: the benchmark's upstream (bench/upstream.ts), every workload's paths in one
 * process. Prints {"origin": …} once listening.
 */
import { exitWithParent } from './child-lifetime.js';
import { startBenchUpstream } from './upstream.js';

const upstream = await startBenchUpstream();
exitWithParent(() => upstream.close());
process.stdout.write(`${JSON.stringify({ origin: upstream.origin })}\n`);
