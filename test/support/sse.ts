/** Reading `text/event-stream` bodies in tests (WHATWG HTML §9.2.6, as far as tests need it). */

export interface SseEvent {
  /** Field lines other than data, in order, as `name: value` (comments excluded). */
  readonly fields: readonly string[];
  /** The data lines joined by LF, or undefined when the event has none. */
  readonly data: string | undefined;
}

/** Splits a whole stream into events: a blank line ends each (CRLF, LF or CR line ends). */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  let lines: string[] = [];
  const dispatch = () => {
    if (lines.length === 0) return;
    const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(line.startsWith('data: ') ? 6 : 5));
    const fields = lines.filter((line) => !line.startsWith('data:') && !line.startsWith(':'));
    events.push({ fields, data: data.length > 0 ? data.join('\n') : undefined });
    lines = [];
  };
  // An unterminated last line is not a line yet.
  const all = text.split(/\r\n|\r|\n/);
  all.pop();
  for (const line of all) {
    if (line === '') dispatch();
    else lines.push(line);
  }
  return events;
}

/** The JSON-RPC messages a stream carried, in order. */
export function sseMessages(text: string): unknown[] {
  return parseSse(text).flatMap((event) => (event.data === undefined ? [] : [JSON.parse(event.data) as unknown]));
}

/** Reads an open stream as it arrives, so a test can wait for what it expects. */
export class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private pending: ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]> | undefined;
  text = '';
  ended = false;

  constructor(response: Response) {
    this.reader = response.body!.getReader();
  }

  /** The JSON-RPC messages received so far (complete events only). */
  get messages(): unknown[] {
    return sseMessages(this.text);
  }

  /** Reads until `done(messages)` holds; throws with what arrived if it does not within timeoutMs. */
  async readUntil(done: (messages: unknown[]) => boolean, timeoutMs = 5_000): Promise<unknown[]> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.messages)) {
      if (this.ended || Date.now() > deadline) throw new Error(`stream did not deliver what was expected; got: ${this.text}`);
      await this.readOnce(deadline - Date.now());
    }
    return this.messages;
  }

  /** Reads whatever arrives within ms (for checking that nothing more does). */
  async readFor(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.ended && Date.now() < deadline) await this.readOnce(deadline - Date.now());
  }

  /** Reads one chunk, or nothing if none arrives within ms. */
  private async readOnce(ms: number): Promise<void> {
    this.pending ??= this.reader.read();
    let timer: NodeJS.Timeout | undefined;
    const chunk = await Promise.race([this.pending, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, ms))))]);
    clearTimeout(timer);
    if (!chunk) return;
    this.pending = undefined;
    if (chunk.done) this.ended = true;
    else this.text += this.decoder.decode(chunk.value, { stream: true });
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }
}
