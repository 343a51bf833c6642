import { Transform, type TransformCallback } from 'node:stream';
import type { ToolsListFilter } from './list-filter.js';

const CR = 0x0d;
const LF = 0x0a;

/**
 * Rewrites the `data` of SSE events that answer a tools/list, event by event: each event is
 * passed on as soon as it is complete, and once every tracked request is answered the rest of
 * the stream is passed through untouched without being looked at.
 *
 * It works on bytes: CR and LF never occur inside a multi-byte UTF-8 sequence, so events are
 * split without decoding, and an event that is not rewritten leaves exactly as it came.
 */
export class SseListFilter extends Transform {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly listFilter: ToolsListFilter) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.listFilter.done && this.pending.length === 0) {
      done(null, chunk);
      return;
    }
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.drain(false);
    done();
  }

  override _flush(done: TransformCallback): void {
    this.drain(true);
    // An unterminated last event is not dispatched by a conforming client, but a lenient one
    // might: it is filtered all the same.
    if (this.pending.length > 0) this.push(this.listFilter.done ? this.pending : this.rewriteEvent(this.pending));
    this.pending = Buffer.alloc(0);
    done();
  }

  private drain(atEnd: boolean): void {
    let start = 0;
    while (!this.listFilter.done) {
      const boundary = findEventEnd(this.pending, start, atEnd);
      if (!boundary) break;
      this.push(this.rewriteEvent(this.pending.subarray(start, boundary.eventEnd)));
      this.push(this.pending.subarray(boundary.eventEnd, boundary.next));
      start = boundary.next;
    }
    this.pending = this.pending.subarray(start);
    if (this.listFilter.done && this.pending.length > 0) {
      this.push(this.pending);
      this.pending = Buffer.alloc(0);
    }
  }

  private rewriteEvent(event: Buffer): Buffer {
    if (event.indexOf('"tools"') === -1) return event; // cheap: only list results can need rewriting
    const lines = event.toString('utf8').split(/\r\n|\r|\n/);
    const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(line.startsWith('data: ') ? 6 : 5));
    let message: unknown;
    try {
      message = JSON.parse(data.join('\n'));
    } catch {
      return event;
    }
    if (!this.listFilter.filterMessage(message)) return event;
    const others = lines.filter((line) => !line.startsWith('data:'));
    return Buffer.from([...others, `data: ${JSON.stringify(message)}`].join('\n'));
  }
}

/**
 * Finds the blank line ending the event that starts at `from`: two line terminators in a row,
 * each CRLF, LF or CR (WHATWG HTML §9.2.6). A CR as the very last byte may be half of a CRLF
 * still in flight, so it only counts at the end of the stream.
 */
export function findEventEnd(buf: Buffer, from: number, atEnd: boolean): { eventEnd: number; next: number } | undefined {
  let i = from;
  while (i < buf.length) {
    const first = terminatorLength(buf, i, atEnd);
    if (first === undefined) return undefined;
    if (first === 0) {
      i++;
      continue;
    }
    const second = terminatorLength(buf, i + first, atEnd);
    if (second === undefined) return undefined;
    if (second > 0) return { eventEnd: i, next: i + first + second };
    i += first;
  }
  return undefined;
}

/** 0: no terminator at i; 1 or 2: its length; undefined: cannot tell yet. */
function terminatorLength(buf: Buffer, i: number, atEnd: boolean): number | undefined {
  if (i >= buf.length) return atEnd ? 0 : undefined;
  if (buf[i] === LF) return 1;
  if (buf[i] !== CR) return 0;
  if (i + 1 < buf.length) return buf[i + 1] === LF ? 2 : 1;
  return atEnd ? 1 : undefined;
}
