import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { BatchedLogOutput, FLUSH_INTERVAL_MS, MAX_BACKLOG_BYTES, type LogSink } from '../../src/observability/log-output.js';
import { createLogger } from '../../src/observability/logger.js';

/** A sink that records each write it was given, as the file descriptor would receive it. */
function recordingSink(): LogSink & { writes: string[] } {
  const writes: string[] = [];
  return { writes, write: (data) => (writes.push(String(data)), true) };
}

describe('batched log output', () => {
  it('writes the lines logged within the flush interval as one write, in order, once the interval is over', async () => {
    // When each write happened, so that "not before the interval" does not depend on which of
    // two timers a loaded machine runs first.
    const writtenAt: number[] = [];
    const sink = recordingSink();
    const output = new BatchedLogOutput({ write: (data) => (writtenAt.push(performance.now()), sink.write(data)) });
    const firstLogged = performance.now();
    output.write('one\n');
    output.write('two\n');
    output.write('three\n');
    expect(sink.writes).toEqual([]);
    await vi.waitFor(() => expect(sink.writes).toHaveLength(1), { timeout: 5_000, interval: 1 });
    expect(sink.writes).toEqual(['one\ntwo\nthree\n']);
    // Timers may fire up to a millisecond early (they count whole milliseconds); never later is a problem.
    expect(writtenAt[0]! - firstLogged).toBeGreaterThanOrEqual(FLUSH_INTERVAL_MS - 1);
    const fourthLogged = performance.now();
    output.write('four\n');
    expect(sink.writes).toHaveLength(1);
    await vi.waitFor(() => expect(sink.writes).toHaveLength(2), { timeout: 5_000, interval: 1 });
    expect(sink.writes).toEqual(['one\ntwo\nthree\n', 'four\n']);
    expect(writtenAt[1]! - fourthLogged).toBeGreaterThanOrEqual(FLUSH_INTERVAL_MS - 1);
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

/**
 * A pipe whose reader takes `room` bytes and then nothing until given more: what a write without
 * waiting (writeSome) can place, and everything a waiting write (write) is handed, in arrival order.
 */
function slowReaderSink(room: number): LogSink & { received: () => string; waitingWrites: number; allow(bytes: number): void } {
  const parts: Buffer[] = [];
  const sink = {
    waitingWrites: 0,
    received: () => Buffer.concat(parts).toString('utf8'),
    allow(bytes: number) {
      room += bytes;
    },
    write(data: string | Buffer) {
      sink.waitingWrites++;
      parts.push(Buffer.from(data));
    },
    writeSome(chunks: readonly Buffer[]) {
      let written = 0;
      for (const chunk of chunks) {
        const take = Math.min(chunk.length, room);
        parts.push(chunk.subarray(0, take));
        room -= take;
        written += take;
        if (take < chunk.length) break;
      }
      return written;
    },
  };
  return sink;
}

describe('batched log output, to a reader that is behind', () => {
  const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `{"n":${from + i},"text":"é—${'x'.repeat(40)}"}\n`);

  it('holds what the reader cannot take without waiting for it, and gives it every line in order once it reads again', async () => {
    const sink = slowReaderSink(100);
    const output = new BatchedLogOutput(sink);
    const all = lines(0, 3000);
    for (const line of all.slice(0, 1500)) output.write(line);
    await sleep(FLUSH_INTERVAL_MS * 3);
    // The reader took its 100 bytes (a multi-byte character cut in two is fine: bytes, not text).
    expect(Buffer.byteLength(sink.received())).toBe(100);
    sink.allow(10_000);
    for (const line of all.slice(1500)) output.write(line);
    await vi.waitFor(() => expect(Buffer.byteLength(sink.received())).toBe(10_100), { timeout: 2_000 });
    sink.allow(Number.POSITIVE_INFINITY);
    await vi.waitFor(() => expect(sink.received()).toBe(all.join('')), { timeout: 2_000 });
    // Control: nothing went through a waiting write.
    expect(sink.waitingWrites).toBe(0);
  });

  it('flush() waits for the reader: everything held, backlog first, then the lines not yet tried', () => {
    const sink = slowReaderSink(10);
    const output = new BatchedLogOutput(sink);
    const all = lines(0, 2000);
    for (const line of all) output.write(line);
    output.write('last\n');
    output.flush();
    expect(sink.received()).toBe(`${all.join('')}last\n`);
    expect(sink.waitingWrites).toBeGreaterThan(0);
  });

  it('waits for the reader once more than MAX_BACKLOG_BYTES are held, and drops nothing', () => {
    const sink = slowReaderSink(0);
    const output = new BatchedLogOutput(sink);
    const line = `${'y'.repeat(1023)}\n`;
    const count = Math.ceil(MAX_BACKLOG_BYTES / line.length) + 64;
    for (let i = 0; i < count; i++) output.write(line);
    expect(sink.waitingWrites).toBeGreaterThan(0);
    output.flush();
    expect(sink.received()).toBe(line.repeat(count));
  });
});
