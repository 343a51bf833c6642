/**
 * Child process: the benchmark's upstream (bench/upstream.ts), every workload's paths in one
 * process. Prints {"origin": …} once listening. Run with --expose-gc: a line `gc` on stdin
 * collects its garbage at once and answers {"gc": true} (see collectUpstreamGarbage).
 */
import { createInterface } from 'node:readline';
import { exitWithParent } from './child-lifetime.js';
import { startBenchUpstream } from './upstream.js';

const upstream = await startBenchUpstream();
exitWithParent(() => upstream.close());
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'gc') return;
  (globalThis as { gc?: () => void }).gc?.();
  process.stdout.write(`${JSON.stringify({ gc: true })}\n`);
});
process.stdout.write(`${JSON.stringify({ origin: upstream.origin })}\n`);
