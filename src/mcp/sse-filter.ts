import { StringDecoder } from 'node:string_decoder';
import { Transform, type TransformCallback } from 'node:stream';
import type { ToolsListFilter } from './list-filter.js';

// An SSE event ends at a blank line: two line terminators in a row, each CRLF, LF or CR
// (WHATWG HTML §9.2.6, "Interpreting an event stream").
const EVENT_END = /(?:\r\n|\n|\r(?!\n))(?:\r\n|\n|\r(?!\n))/;

/**
 * Rewrites the `data` of SSE events that answer a tools/list, event by event: each event is
 * passed on as soon as it is complete, and once every tracked request is answered the rest of
 * the stream is passed through untouched without being parsed at all.
 */
export class SseListFilter extends Transform {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly listFilter: ToolsListFilter) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.listFilter.done && this.pending === '') {
      done(null, chunk);
      return;
    }
    this.pending += this.decoder.write(chunk);
    let match: RegExpExecArray | null;
    while (!this.listFilter.done && (match = EVENT_END.exec(this.pending)) !== null) {
      const end = match.index + match[0].length;
      // A trailing "\r" may be the first half of a "\r\n" still in flight: wait for the next chunk.
      if (end === this.pending.length && this.pending.endsWith('\r')) break;
      this.push(this.rewriteEvent(this.pending.slice(0, match.index)) + match[0]);
      this.pending = this.pending.slice(end);
    }
    if (this.listFilter.done && this.pending !== '') {
      this.push(this.pending);
      this.pending = '';
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    const rest = this.pending + this.decoder.end();
    done(null, rest === '' ? undefined : rest);
  }

  private rewriteEvent(event: string): string {
    if (!event.includes('"tools"')) return event; // cheap: only list results can need rewriting
    const lines = event.split(/\r\n|\r|\n/);
    const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(line.startsWith('data: ') ? 6 : 5));
    let message: unknown;
    try {
      message = JSON.parse(data.join('\n'));
    } catch {
      return event;
    }
    if (!this.listFilter.filterMessage(message)) return event;
    const others = lines.filter((line) => !line.startsWith('data:'));
    return [...others, `data: ${JSON.stringify(message)}`].join('\n');
  }
}
