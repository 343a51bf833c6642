import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { BatchedLogOutput, FLUSH_INTERVAL_MS, type LogSink } from '../../src/observability/log-output.js';
import { createLogger } from '../../src/observability/logger.js';

/** A sink that records each write it was given, as the file descriptor would receive it. */
function recordingSink(): LogSink & { writes: string[] } {
  const writes: string[] = [];
  return { writes, write: (data) => (writes.push(data), true) };
}

describe('batched log output', () => {
  it('writes the lines logged within the flush interval as one write, in order, once the interval is over', async () => {
    const sink = recordingSink();
    const output = new BatchedLogOutput(sink);
    output.write('one\n');
    output.write('two\n');
    output.write('three\n');
    await sleep(0);
    expect(sink.writes).toEqual([]);
    await sleep(FLUSH_INTERVAL_MS + 5);
    expect(sink.writes).toEqual(['one\ntwo\nthree\n']);
    output.write('four\n');
    await sleep(FLUSH_INTERVAL_MS + 5);
    expect(sink.writes).toEqual(['one\ntwo\nthree\n', 'four\n']);
  });

  it('writes a burst at once when it reaches 64 Ki characters, without waiting for the interval', () => {
    const sink = recordingSink();
    const output = new BatchedLogOutput(sink);
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 63; i++) output.write(line);
    expect(sink.writes).toEqual([]);
    output.write(line);
    expect(sink.writes).toEqual([line.repeat(64)]);
  });

  it('flush() writes everything held, synchronously, and leaves nothing for the interval', async () => {
    const sink = recordingSink();
    const output = new BatchedLogOutput(sink);
    output.write('a\n');
    output.write('b\n');
    output.flush();
    expect(sink.writes).toEqual(['a\nb\n']);
    await sleep(FLUSH_INTERVAL_MS + 5);
    expect(sink.writes).toEqual(['a\nb\n']);
  });

  it("is what a logger writes to: logger.flush() writes the lines it logged, and each is whole JSON", () => {
    const sink = recordingSink();
    const logger = createLogger('info', new BatchedLogOutput(sink));
    logger.info({ event: 'access', status: 200 }, 'request');
    logger.info({ event: 'authz', decision: 'allow' }, 'authorization decision');
    logger.debug('not at this level');
    expect(sink.writes).toEqual([]);
    logger.flush();
    expect(sink.writes).toHaveLength(1);
    const lines = sink.writes[0]!.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => [line.event, line.msg])).toEqual([
      ['access', 'request'],
      ['authz', 'authorization decision'],
    ]);
  });
});
