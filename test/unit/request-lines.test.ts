import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { BatchedLogOutput } from '../../src/observability/log-output.js';
import { createLogger } from '../../src/observability/logger.js';
import { booleanField, jsonField, numberField, stringField, writeInfoLine } from '../../src/observability/request-lines.js';

/** What a logger wrote, as text. */
function recorder(): { output: BatchedLogOutput; text: () => string } {
  const writes: string[] = [];
  const output = new BatchedLogOutput({ write: (data) => (writes.push(String(data)), true) });
  return {
    output,
    text: () => {
      output.flush();
      return writes.splice(0).join('');
    },
  };
}

interface Fields {
  readonly requestId: string;
  readonly path: string | undefined;
  readonly status: number;
  readonly ms: number;
  readonly aborted: boolean | undefined;
  readonly resources: readonly string[];
}

const fields = (f: Fields) =>
  stringField('requestId', f.requestId) +
  stringField('path', f.path) +
  numberField('status', f.status) +
  numberField('ms', f.ms) +
  booleanField('aborted', f.aborted) +
  jsonField('resources', f.resources);

/** Freezes pino's clock, so the line written by pino and the one written here can be compared byte for byte. */
function withClock<T>(now: number, run: () => T): T {
  const realNow = Date.now;
  Date.now = () => now;
  try {
    return run();
  } finally {
    Date.now = realNow;
  }
}

describe('request lines: the per-request lines in the logger’s own format', () => {
  const anyFields = fc.record({
    // Quotes, backslashes, control characters, lone surrogates, non-ASCII: whatever a client sends.
    requestId: fc.string({ unit: 'binary', maxLength: 40 }),
    path: fc.option(fc.string({ unit: 'binary', maxLength: 40 }), { nil: undefined }),
    status: fc.integer({ min: 100, max: 599 }),
    ms: fc.oneof(fc.double(), fc.constant(Number.NaN), fc.constant(Number.POSITIVE_INFINITY)),
    aborted: fc.option(fc.boolean(), { nil: undefined }),
    resources: fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  });

  it('parses to what pino writes for the same fields, for any values', () => {
    fc.assert(
      fc.property(anyFields, (f) => {
        const { output, text } = recorder();
        const logger = createLogger('info', output);
        const ours = withClock(1_700_000_000_000, () => (writeInfoLine(logger, ',"event":"access"' + fields(f), 'request'), text()));
        const theirs = withClock(1_700_000_000_000, () => (logger.info({ event: 'access', ...f }, 'request'), text()));
        expect(ours.endsWith('}\n')).toBe(true);
        expect(ours.split('\n')).toHaveLength(2);
        expect(JSON.parse(ours)).toEqual(JSON.parse(theirs));
      }),
    );
  });

  it('writes plain values byte for byte as pino does: level, time, bindings, fields, message', () => {
    const { output, text } = recorder();
    const logger = createLogger('info', output).child({ component: 'test' });
    const plain: Fields = { requestId: 'r-1', path: '/mcp', status: 200, ms: 1.5, aborted: undefined, resources: ['a', 'b'] };
    const ours = withClock(1_700_000_000_123, () => (writeInfoLine(logger, ',"event":"access"' + fields(plain), 'request'), text()));
    const theirs = withClock(1_700_000_000_123, () => (logger.info({ event: 'access', ...plain }, 'request'), text()));
    expect(ours).toBe(theirs);
    expect(ours).toBe('{"level":30,"time":1700000000123,"service":"mcp-auth-gateway","component":"test","event":"access","requestId":"r-1","path":"/mcp","status":200,"ms":1.5,"resources":["a","b"],"msg":"request"}\n');
  });

  it('writes any string exactly as JSON.stringify does (the quoting that skips it for plain values included)', () => {
    const anyString = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ maxLength: 300 }),
      fc.stringMatching(/^[\w./:-]{0,300}$/),
      // The characters at the edges of what JSON.stringify escapes, lone surrogate halves of both kinds among them.
      fc
        .array(fc.constantFrom('a', '/', '"', '\\', '\u0000', '\u001f', ' ', '\u007f', 'é', '\ud7ff', '\ud800', '\udbff', '\udc00', '\udfff', '\ue000', '😀'), { maxLength: 12 })
        .map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(anyString, (value) => {
        expect(stringField('k', value)).toBe(`,"k":${JSON.stringify(value)}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('writes any number exactly as JSON does: durations in tenths of a ms and statuses by their integer tenths, the rest as String()', () => {
    const anyNumber = fc.oneof(
      fc.integer({ min: -10, max: 0x7fffffff + 10 }).map((tenths) => tenths / 10),
      fc.double({ min: 0, max: 1e6 }).map((ms) => Math.round(ms * 10) / 10),
      fc.integer({ min: 100, max: 599 }),
      fc.double(),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, 0.1, 0.30000000000000004, 2 ** 31, 1e21),
    );
    fc.assert(
      fc.property(anyNumber, (value) => {
        expect(numberField('n', value)).toBe(`,"n":${Number.isFinite(value) ? String(value) : 'null'}`);
      }),
      { numRuns: 5000 },
    );
  });

  it("writes pino's time field once per millisecond, and the next millisecond's when the clock moves", () => {
    const { output, text } = recorder();
    const logger = createLogger('info', output);
    const line = (now: number) => withClock(now, () => (writeInfoLine(logger, '', 'x'), text()));
    expect(line(1_700_000_000_001)).toContain('"time":1700000000001,');
    expect(line(1_700_000_000_001)).toContain('"time":1700000000001,');
    expect(line(1_700_000_000_002)).toContain('"time":1700000000002,');
  });

  it('goes through pino itself for a logger it cannot imitate (here: a mixin), with the same fields', () => {
    const writes: string[] = [];
    const logger = pino({ base: null, timestamp: false, mixin: () => ({ mixed: true }) }, { write: (line: string) => void writes.push(line) });
    writeInfoLine(logger, stringField('event', 'access') + numberField('status', 403), 'request');
    expect(JSON.parse(writes.join(''))).toEqual({ level: 30, mixed: true, event: 'access', status: 403, msg: 'request' });
  });
});
