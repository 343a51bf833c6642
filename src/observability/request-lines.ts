import { pino } from 'pino';
import type { Logger } from './logger.js';

/**
 * The per-request lines (access, authz) written in the logger's own format, byte for byte what
 * `logger.info(fields, msg)` writes, but built as one string from fields the caller picked: no
 * object to build, no generic pass over it, no key to escape. pino's `asJson` walks every key
 * with `for…in` and escapes each one, and the record objects the two lines needed were garbage
 * at once; writing the lines here took 6% off the gateway's instructions per small call
 * (`npm run bench:instructions`, docs/performance.md item 30).
 *
 * These lines skip pino's redaction pass (fast-redact over logger.ts's REDACTED_PATHS, about 30 µs
 * a line with its wildcards): every field is picked one by one from values that are never
 * credentials (ids, names, statuses; tool arguments only through redactArguments).
 *
 * Keys are constants of this codebase, JSON-safe as written; values are JSON-encoded here.
 */
export type LineFields = string;

/** `,"key":"value"`, or nothing for undefined (pino leaves undefined fields out too). */
export function stringField(key: string, value: string | undefined): LineFields {
  return value === undefined ? '' : `,"${key}":${jsonString(value)}`;
}

/** `,"key":1.5`; a number that JSON cannot hold is written as null, as pino does. */
export function numberField(key: string, value: number | undefined): LineFields {
  if (value === undefined) return '';
  return `,"${key}":${jsonNumber(value)}`;
}

/**
 * `value` as a JSON string, exactly as JSON.stringify writes it. The values here (ids, names,
 * paths) seldom hold a character JSON escapes, and each JSON.stringify call pays a fixed setup in
 * V8's runtime (about 600 instructions, some twenty calls a request): a string that needs no
 * escape is quoted as it is. With jsonNumber and the time field below, a request's two lines took
 * about 4k fewer instructions and 15% less time to build, measured alone (docs/performance.md).
 */
function jsonString(value: string): string {
  if (value.length > 256) return JSON.stringify(value);
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    // What JSON.stringify escapes: control characters, the quote, the backslash, and (since
    // ES2019) lone surrogates; a pair is left to it as well.
    if (code < 0x20 || code === 0x22 || code === 0x5c || (code >= 0xd800 && code <= 0xdfff)) return JSON.stringify(value);
  }
  return `"${value}"`;
}

/**
 * `value` as JSON writes it, null for NaN and the infinities. Statuses and durations rounded to
 * a tenth of a millisecond, the numbers these lines hold, are written from their integer tenths:
 * "12.3" is the shortest text that reads back as 123 / 10, so it is what String() writes, without
 * the general double-to-text conversion.
 */
function jsonNumber(value: number): string {
  const tenths = Math.round(value * 10);
  if (tenths >= 0 && tenths <= 0x7fffffff && tenths / 10 === value) {
    const tenth = tenths % 10;
    const whole = (tenths - tenth) / 10;
    return tenth === 0 ? String(whole) : `${whole}.${tenth}`;
  }
  return Number.isFinite(value) ? String(value) : 'null';
}

export function booleanField(key: string, value: boolean | undefined): LineFields {
  return value === undefined ? '' : `,"${key}":${value ? 'true' : 'false'}`;
}

/** Any JSON value (an array, redacted tool arguments): plain data with no cycles. */
export function jsonField(key: string, value: unknown): LineFields {
  return value === undefined ? '' : `,"${key}":${JSON.stringify(value)}`;
}

interface LineFormat {
  /** `{"level":30` as the logger writes it. */
  readonly prefix: string;
  readonly time: () => string;
  /** The logger's bindings (`,"service":"mcp-auth-gateway"`, and a child's). */
  readonly bindings: string;
  readonly messageKey: string;
  /** `}\n`. */
  readonly end: string;
  readonly stream: { write(line: string): unknown };
}

const formats = new WeakMap<Logger, LineFormat | null>();

/**
 * Writes one info line with `fields` (built with the helpers above) and `msg`. The caller checks
 * `logger.isLevelEnabled('info')` first. A logger this cannot imitate exactly (a mixin, a log
 * formatter, a write hook, a destination that needs pino's metadata) gets the same fields through
 * `logger.info`, parsed back from the fragment: slower, never different.
 */
export function writeInfoLine(logger: Logger, fields: LineFields, msg: string): void {
  let format = formats.get(logger);
  if (format === undefined) {
    format = lineFormatOf(logger);
    formats.set(logger, format);
  }
  if (format === null) {
    logger.info(JSON.parse(`{${fields.slice(1)}}`) as object, msg);
    return;
  }
  format.stream.write(`${format.prefix}${format.time()}${format.bindings}${fields},"${format.messageKey}":${JSON.stringify(msg)}${format.end}`);
}

type PinoInternals = Record<symbol, unknown>;

function lineFormatOf(logger: Logger): LineFormat | null {
  const internals = logger as unknown as PinoInternals;
  const { symbols } = pino;
  const stream = internals[symbols.streamSym] as (LineFormat['stream'] & PinoInternals) | undefined;
  const formatters = internals[symbols.formattersSym] as { log?: unknown } | undefined;
  const hooks = internals[symbols.hooksSym] as { streamWrite?: unknown } | undefined;
  const levelCache = internals[symbols.lsCacheSym] as Record<number, string> | undefined;
  const time = internals[symbols.timeSym] as (() => string) | undefined;
  const bindings = internals[symbols.chindingsSym];
  const messageKey = internals[symbols.messageKeySym];
  const end = internals[symbols.endSym];
  const imitable =
    stream !== undefined &&
    stream[symbols.needsMetadataGsym] !== true &&
    !internals[symbols.mixinSym] &&
    !formatters?.log &&
    !hooks?.streamWrite &&
    !internals[(symbols as unknown as Record<string, symbol>).msgPrefixSym!] &&
    Object.keys((internals[symbols.serializersSym] as object | undefined) ?? {}).every((key) => key === 'err') &&
    !internals[symbols.nestedKeySym] &&
    typeof levelCache?.[logger.levels.values.info!] === 'string' &&
    typeof time === 'function' &&
    typeof bindings === 'string' &&
    typeof messageKey === 'string' &&
    typeof end === 'string';
  if (!imitable) return null;
  return {
    prefix: levelCache[logger.levels.values.info!]!,
    time: time === pino.stdTimeFunctions.epochTime ? epochTimeOncePerMillisecond : time.bind(logger),
    bindings,
    messageKey,
    end,
    stream,
  };
}

let timeMs = Number.NaN;
let timeField = '';

/**
 * pino's default time field, `,"time":<ms since the epoch>`, made once per millisecond: that
 * number is no small integer, and writing it out is a double-to-text conversion per line.
 */
function epochTimeOncePerMillisecond(): string {
  const now = Date.now();
  if (now !== timeMs) {
    timeMs = now;
    timeField = `,"time":${now}`;
  }
  return timeField;
}
