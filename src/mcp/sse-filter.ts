import { isUtf8 } from 'node:buffer';
import type { FilterOutcome, MessageFilter } from './list-filter.js';
import { isObject } from './message.js';
import { findDuplicateKey } from './strict-json.js';

const CR = 0x0d;
const LF = 0x0a;

/** One event larger than this is refused (the stream is ended), never passed on unchecked. */
export const MAX_SSE_EVENT_BYTES = 16 * 1024 * 1024;

const EMPTY = Buffer.alloc(0);

/** Where filtered bytes go, in order (an array will do). */
export interface SseSink {
  push(bytes: Buffer): unknown;
}

/** An event grew past MAX_SSE_EVENT_BYTES before it ended: the stream must be cut. */
export class SseEventTooLargeError extends Error {
  override readonly name = 'SseEventTooLargeError';
}

/** An event that cannot be read as the client may read it (not UTF-8, a duplicate key): the stream must be cut. */
export class SseUncheckableEventError extends Error {
  override readonly name = 'SseUncheckableEventError';
}

/**
 * Filters the server messages inside a `text/event-stream`, event by event (hidden items out of
 * list answers, updates about resources the principal may not read dropped whole): each event
 * is passed on as soon as its terminating blank line arrives.
 *
 * It works on bytes: CR and LF never occur inside a multi-byte UTF-8 sequence, so events are
 * split without decoding, and an event that is not rewritten leaves exactly as it came. The
 * partial event is kept in a buffer that grows by doubling and is scanned only from where the
 * last scan stopped, so a large event costs linear time.
 *
 * Not a stream: the relay calls it from its own 'data' listener and writes what it passes on.
 * Thousands of idle streams may be open, and a Transform in between cost each of them a second
 * pipe and its stream state (about 1.5 KiB).
 */
export class SseListFilter {
  private buffer = EMPTY;
  private length = 0;
  /** Bytes of `buffer` already scanned without finding the end of an event. */
  private scanned = 0;
  /** Where passed-on bytes go during one write() or end(). */
  private sink: SseSink | undefined;

  constructor(private readonly listFilter: MessageFilter) {}

  /** Takes the next chunk of the stream; pushes every event it completes to `sink`. Throws SseEventTooLargeError. */
  write(chunk: Buffer, sink: SseSink): void {
    if (this.length + chunk.length > MAX_SSE_EVENT_BYTES) throw new SseEventTooLargeError(`SSE event larger than ${MAX_SSE_EVENT_BYTES} bytes`);
    this.sink = sink;
    try {
      this.append(chunk);
      this.drain(false);
    } finally {
      this.sink = undefined;
    }
  }

  /** The stream ended: pushes what is left to `sink`. */
  end(sink: SseSink): void {
    this.sink = sink;
    try {
      this.drain(true);
      // An unterminated last event is not dispatched by a conforming client, but a lenient one
      // might: it is filtered all the same.
      if (this.length > 0) this.pushEvent(Buffer.from(this.buffer.subarray(0, this.length)));
      this.length = 0;
      this.buffer = EMPTY;
    } finally {
      this.sink = undefined;
    }
  }

  private push(bytes: Buffer): void {
    this.sink!.push(bytes);
  }

  private append(chunk: Buffer): void {
    if (this.length + chunk.length > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + chunk.length, 4096));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    chunk.copy(this.buffer, this.length);
    this.length += chunk.length;
  }

  private drain(atEnd: boolean): void {
    const view = this.buffer.subarray(0, this.length);
    let start = 0;
    // Resume where the last scan stopped, backed up to the start of any trailing run of CR/LF:
    // a terminator pair may straddle the chunk boundary, and scanning must start on a terminator's
    // first byte (starting on the LF of a CRLF would misread it as a terminator of its own).
    let from = this.scanned;
    while (from > 0 && (view[from - 1] === CR || view[from - 1] === LF)) from--;
    for (;;) {
      const boundary = findEventEnd(view, Math.max(start, from), atEnd);
      if (!boundary) break;
      // Copies: the pushed bytes must not share memory with the buffer that is reused below.
      // A dropped event goes with its terminator, so the client sees no empty event.
      if (this.pushEvent(Buffer.from(view.subarray(start, boundary.eventEnd)))) this.push(Buffer.from(view.subarray(boundary.eventEnd, boundary.next)));
      start = from = boundary.next;
    }
    if (start > 0) {
      view.copy(this.buffer, 0, start, this.length);
      this.length -= start;
    }
    this.scanned = this.length;
    // An idle stream between events keeps no buffer (thousands of them may be open).
    if (this.length === 0) this.buffer = EMPTY;
  }

  /** Pushes the event as the filter has it; false when the filter dropped it. */
  private pushEvent(event: Buffer): boolean {
    if (event.length === 0) return true;
    const rewritten = this.rewriteEvent(event);
    if (rewritten === undefined) return false;
    if (Buffer.isBuffer(rewritten)) this.push(rewritten);
    else for (const part of rewritten) this.push(part);
    return true;
  }

  private rewriteEvent(event: Buffer): Buffer | readonly Buffer[] | undefined {
    // A lone response on one data line may be a list answer already filtered in full: answered
    // from its template around the id (see AnswerTemplates), the event's other lines as they came.
    const templates = this.listFilter.answerTemplates?.();
    const payload = templates ? singleDataPayload(event) : undefined;
    if (templates && payload) {
      const data = event.subarray(payload.start, payload.end);
      const parts = templates.lookupParts([data]);
      if (parts) return parts[0] === data ? event : [event.subarray(0, payload.start), ...parts, event.subarray(payload.end)];
    }
    // Event streams are UTF-8 (WHATWG HTML §9.2.5): an event that is not cannot be checked. Nor
    // can one holding a NUL, which no JSON text has but UTF-16 text always does: its lines are
    // no `data:` field to the filter, so they would pass, to a client that reads them as UTF-16.
    if (!isUtf8(event)) throw new SseUncheckableEventError('SSE event is not UTF-8');
    if (event.indexOf(0) !== -1) throw new SseUncheckableEventError('SSE event holds a NUL byte');
    if (!this.listFilter.mayConcern(event)) return event;
    // A leading byte-order mark is dropped by clients (WHATWG HTML §9.2.6): read past it too.
    const lines = event.toString('utf8').replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
    const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(line.startsWith('data: ') ? 6 : 5));
    const text = data.join('\n');
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      // Names a tools member but is not JSON: no client can use it, and it cannot be checked.
      return Buffer.from(fieldLinesOtherThanData(lines).join('\n'));
    }
    // Judged on the last of duplicate keys, read by some clients on the first: not passed on.
    if (findDuplicateKey(text) !== undefined) throw new SseUncheckableEventError('SSE event has a duplicate JSON key');
    const outcome = Array.isArray(message) ? this.applyToBatch(message) : this.listFilter.apply(message);
    if (outcome === 'drop') return undefined;
    if (outcome === 'exempt') return event;
    if (templates && payload && isObject(message) && !('method' in message)) {
      const data = event.subarray(payload.start, payload.end);
      const filtered = templates.remember(data, message, outcome === 'changed');
      return filtered === data ? event : [event.subarray(0, payload.start), filtered, event.subarray(payload.end)];
    }
    if (outcome === 'keep') return event;
    const others = fieldLinesOtherThanData(lines);
    return Buffer.from([...others, `data: ${JSON.stringify(message)}`].join('\n'));
  }

  /**
   * A batch in one event (Streamable HTTP 2025-03-26 §Sending Messages to the Server: the
   * responses and the messages before them "MAY be batched"): each message is judged as if it
   * came alone, dropped ones are taken out, and an event left empty is dropped whole.
   */
  private applyToBatch(batch: unknown[]): FilterOutcome {
    let changed = false;
    for (let i = batch.length - 1; i >= 0; i--) {
      const outcome = this.listFilter.apply(batch[i]);
      if (outcome === 'drop') batch.splice(i, 1);
      changed = outcome === 'drop' || outcome === 'changed' || changed;
    }
    if (batch.length === 0) return 'drop';
    return changed ? 'changed' : 'keep';
  }
}

/**
 * Where the value of the event's one data line lies, when the event has exactly one line that
 * names the data field (`data:` with an optional space) and no byte-order mark: then that value
 * is the whole message. Anything else (several data lines, a bare `data`) is left to the full path.
 */
export function singleDataPayload(event: Buffer): { start: number; end: number } | undefined {
  if (event[0] === 0xef) return undefined; // a BOM, or not text a client reads as a field
  let found: { start: number; end: number } | undefined;
  for (let lineStart = 0; lineStart < event.length; ) {
    const lineEnd = nextLineBreak(event, lineStart);
    if (event.compare(DATA_FIELD, 0, DATA_FIELD.length, lineStart, Math.min(lineStart + DATA_FIELD.length, lineEnd)) === 0) {
      if (found) return undefined;
      const colon = lineStart + DATA_FIELD.length;
      if (event[colon] !== COLON) return undefined;
      const start = event[colon + 1] === SPACE ? colon + 2 : colon + 1;
      found = { start, end: lineEnd };
    }
    lineStart = lineEnd + (event[lineEnd] === CR && event[lineEnd + 1] === LF ? 2 : 1);
  }
  return found;
}

const DATA_FIELD = Buffer.from('data');
const COLON = 0x3a;
const SPACE = 0x20;

/** An empty line would end the event early when the event is rebuilt, so none are kept. */
function fieldLinesOtherThanData(lines: readonly string[]): string[] {
  return lines.filter((line) => line !== '' && !line.startsWith('data:'));
}

/**
 * Finds the blank line ending the event that starts at or before `from`: two line terminators
 * in a row, each CRLF, LF or CR (WHATWG HTML §9.2.6). A CR as the very last byte may be half of
 * a CRLF still in flight, so it only counts at the end of the stream.
 */
export function findEventEnd(buf: Buffer, from: number, atEnd: boolean): { eventEnd: number; next: number } | undefined {
  let i = from;
  while (i < buf.length) {
    const first = terminatorLength(buf, i, atEnd);
    if (first === undefined) return undefined;
    if (first === 0) {
      i = nextLineBreak(buf, i + 1);
      continue;
    }
    const second = terminatorLength(buf, i + first, atEnd);
    if (second === undefined) return undefined;
    if (second > 0) return { eventEnd: i, next: i + first + second };
    i += first;
  }
  return undefined;
}

/**
 * Index of the next CR or LF at or after `from` (buf.length if none), found with indexOf rather
 * than a byte loop: a list answer is one line of tens of kilobytes. The CR search stops at the
 * next LF, so a stream of many events is still scanned once.
 */
function nextLineBreak(buf: Buffer, from: number): number {
  const lf = buf.indexOf(LF, from);
  const end = lf === -1 ? buf.length : lf;
  const cr = buf.subarray(from, end).indexOf(CR);
  return cr === -1 ? end : from + cr;
}

/** 0: no terminator at i; 1 or 2: its length; undefined: cannot tell yet. */
function terminatorLength(buf: Buffer, i: number, atEnd: boolean): number | undefined {
  if (i >= buf.length) return atEnd ? 0 : undefined;
  if (buf[i] === LF) return 1;
  if (buf[i] !== CR) return 0;
  if (i + 1 < buf.length) return buf[i + 1] === LF ? 2 : 1;
  return atEnd ? 1 : undefined;
}
