import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/observability/logger.js';

/** A real pino logger whose JSON lines are parsed into `logs`, for assertions on what was logged. */
export function captureLogs(): { logger: Logger; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('info', sink), logs };
}

/** The first entry from index `from` on that matches, once one is logged; fails after `timeoutMs`. */
export async function waitForLogEntry(
  logs: readonly Record<string, unknown>[],
  match: (entry: Record<string, unknown>) => boolean,
  from: number,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = logs.slice(from).find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error('no matching log entry');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
