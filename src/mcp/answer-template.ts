/**
 * Filtered list answers, remembered as the bytes around their JSON-RPC id.
 *
 * An upstream answers tools/list with the same bytes every time but for the id, and filtering
 * means parsing and re-serialising the whole list (about 0.5 ms for 200 tools). So the answer is
 * kept as a template: the upstream's bytes before and after the top-level id, and the filtered
 * bytes before and after it. A later answer that is byte for byte the same around a plain id
 * token (digits, or a quoted string without quotes or escapes) is the same JSON with another id,
 * so its filtered form is the filtered template around that id: two byte comparisons and a copy.
 * Anything else (another list, a cursor, a changed description) misses and is filtered in full.
 *
 * Only single response messages are kept (no `method`): their filtering depends on the route's
 * policy alone, never on who asks, so the owner (one per route filter) may share them.
 */

const MAX_ENTRIES = 4;
/** Larger answers are filtered in full each time rather than held (200 tools are about 66 KB). */
const MAX_TEMPLATE_BYTES = 1024 * 1024;
const MAX_ID_BYTES = 128;

/** Stands in for the id while the filtered message is serialised; its JSON form is searched for. */
const ID_SENTINEL = '\u0000mcp-auth-gateway:answer-id\u0000';
const ID_SENTINEL_JSON = JSON.stringify(ID_SENTINEL);

interface Template {
  /** Filtering left this answer as it was: the same answer with another id passes as it came. */
  readonly unchanged: boolean;
  readonly before: Buffer;
  readonly after: Buffer;
  readonly filteredBefore: Buffer;
  readonly filteredAfter: Buffer;
}

export class AnswerTemplates {
  private templates: Template[] = [];

  /**
   * @param worthKeeping whether a filtered response is one to keep: a list answer, not any
   *   answer that merely needed checking (a tool result with a `\u` escape would otherwise push
   *   the lists out, and be held for nothing).
   */
  constructor(private readonly worthKeeping: (message: Record<string, unknown>) => boolean = () => true) {}

  /** The filtered form of `body`, if it is a remembered answer with another id. */
  lookup(body: Buffer): Buffer | undefined {
    const parts = this.lookupParts([body]);
    return parts && (parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }

  /**
   * As lookup, for an answer still in the chunks it arrived in, answered in parts to write in
   * order: a large list is neither joined nor copied.
   */
  lookupParts(chunks: readonly Buffer[]): readonly Buffer[] | undefined {
    let length = 0;
    for (const chunk of chunks) length += chunk.length;
    for (const template of this.templates) {
      const idLength = length - template.before.length - template.after.length;
      if (idLength < 1 || idLength > MAX_ID_BYTES) continue;
      if (!equalAt(chunks, 0, template.before) || !equalAt(chunks, length - template.after.length, template.after)) continue;
      const id = bytesAt(chunks, template.before.length, idLength);
      if (!isPlainIdToken(id)) continue;
      return template.unchanged ? chunks : [template.filteredBefore, id, template.filteredAfter];
    }
    return undefined;
  }

  /**
   * Remembers `body` (valid JSON, one response message) and what it filtered to: `message`, its
   * parse, already filtered in place (`changed`: whether filtering changed it). Returns the bytes
   * to send. Bodies whose id cannot be found as one plain token are not remembered.
   */
  remember(body: Buffer, message: Record<string, unknown>, changed: boolean): Buffer {
    const filtered = () => (changed ? Buffer.from(JSON.stringify(message)) : body);
    if (body.length > MAX_TEMPLATE_BYTES || !this.worthKeeping(message)) return filtered();
    const span = topLevelIdSpan(body);
    if (!span || !isPlainIdToken(body.subarray(span.start, span.end))) return filtered();
    const before = Buffer.from(body.subarray(0, span.start));
    const after = Buffer.from(body.subarray(span.end));
    let filteredBefore = before;
    let filteredAfter = after;
    if (changed) {
      const id = message.id;
      message.id = ID_SENTINEL;
      const text = JSON.stringify(message);
      message.id = id;
      const at = text.indexOf(ID_SENTINEL_JSON);
      if (at === -1 || text.indexOf(ID_SENTINEL_JSON, at + 1) !== -1) return filtered();
      filteredBefore = Buffer.from(text.slice(0, at));
      filteredAfter = Buffer.from(text.slice(at + ID_SENTINEL_JSON.length));
    }
    this.templates = [{ unchanged: !changed, before, after, filteredBefore, filteredAfter }, ...this.templates.slice(0, MAX_ENTRIES - 1)];
    return changed ? Buffer.concat([filteredBefore, body.subarray(span.start, span.end), filteredAfter]) : body;
  }
}

/** Whether `expected` equals the bytes of `chunks` (taken as one sequence) from `offset` on. */
function equalAt(chunks: readonly Buffer[], offset: number, expected: Buffer): boolean {
  let index = 0;
  while (index < chunks.length && offset >= chunks[index]!.length) offset -= chunks[index++]!.length;
  for (let done = 0; done < expected.length; offset = 0) {
    const chunk = chunks[index++];
    if (!chunk) return false;
    const n = Math.min(chunk.length - offset, expected.length - done);
    if (chunk.compare(expected, done, done + n, offset, offset + n) !== 0) return false;
    done += n;
  }
  return true;
}

/** A copy of `length` bytes of `chunks` (taken as one sequence) from `offset` on; only ever an id. */
function bytesAt(chunks: readonly Buffer[], offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let index = 0;
  while (index < chunks.length && offset >= chunks[index]!.length) offset -= chunks[index++]!.length;
  for (let done = 0; done < length; offset = 0) {
    const chunk = chunks[index++]!;
    done += chunk.copy(out, done, offset, Math.min(chunk.length, offset + length - done));
  }
  return out;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * A JSON-RPC id that cannot change the structure around it: an integer (JSON grammar, no
 * exponent or fraction) or a string of printable ASCII with no quote or escape.
 */
export function isPlainIdToken(bytes: Buffer): boolean {
  const n = bytes.length;
  if (n === 0 || n > MAX_ID_BYTES) return false;
  if (bytes[0] === QUOTE) {
    if (n < 2 || bytes[n - 1] !== QUOTE) return false;
    for (let i = 1; i < n - 1; i++) {
      const b = bytes[i]!;
      if (b < 0x20 || b > 0x7e || b === QUOTE || b === BACKSLASH) return false;
    }
    return true;
  }
  let i = bytes[0] === 0x2d /* - */ ? 1 : 0;
  if (i === n) return false;
  if (bytes[i] === 0x30 /* 0 */) return i + 1 === n;
  for (; i < n; i++) if (bytes[i]! < 0x30 || bytes[i]! > 0x39) return false;
  return true;
}

const isWhitespace = (b: number | undefined) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/**
 * Where the value of the top-level member "id" lies in a JSON object's bytes, if there is
 * exactly one such member. The bytes must already have parsed as JSON: this only walks them.
 */
export function topLevelIdSpan(bytes: Buffer): { start: number; end: number } | undefined {
  let i = skipWhitespace(bytes, 0);
  if (bytes[i] !== 0x7b /* { */) return undefined;
  i = skipWhitespace(bytes, i + 1);
  if (bytes[i] !== QUOTE) return undefined; // an empty object
  let found: { start: number; end: number } | undefined;
  for (;;) {
    const keyEnd = endOfString(bytes, i);
    const isId = keyIsId(bytes, i, keyEnd);
    i = skipWhitespace(bytes, skipWhitespace(bytes, keyEnd) + 1); // past the colon
    const start = i;
    const end = endOfValue(bytes, i);
    if (isId) {
      if (found) return undefined; // a duplicate: which one a client reads is not ours to guess
      found = { start, end };
    }
    i = skipWhitespace(bytes, end);
    if (bytes[i] !== 0x2c /* , */) return found;
    i = skipWhitespace(bytes, i + 1);
  }
}

function skipWhitespace(bytes: Buffer, i: number): number {
  while (isWhitespace(bytes[i])) i++;
  return i;
}

/** Index just past the string whose opening quote is at `start`. */
function endOfString(bytes: Buffer, start: number): number {
  for (let i = start + 1; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === BACKSLASH) i++;
    else if (b === QUOTE) return i + 1;
  }
  return bytes.length;
}

function keyIsId(bytes: Buffer, start: number, end: number): boolean {
  if (end - start === 4) return bytes[start + 1] === 0x69 /* i */ && bytes[start + 2] === 0x64 /* d */;
  // Escapes spell the same key another way ("\u0069d"): decode those few.
  const escape = bytes.indexOf(BACKSLASH, start);
  return escape !== -1 && escape < end && JSON.parse(bytes.toString('utf8', start, end)) === 'id';
}

/** Index just past the JSON value starting at `start`. */
function endOfValue(bytes: Buffer, start: number): number {
  const first = bytes[start];
  if (first === QUOTE) return endOfString(bytes, start);
  if (first === 0x7b || first === 0x5b /* { [ */) {
    let depth = 0;
    for (let i = start; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === QUOTE) i = endOfString(bytes, i) - 1;
      else if (b === 0x7b || b === 0x5b) depth++;
      else if ((b === 0x7d || b === 0x5d) && --depth === 0) return i + 1;
    }
    return bytes.length;
  }
  let i = start;
  while (i < bytes.length && bytes[i] !== 0x2c && bytes[i] !== 0x7d && bytes[i] !== 0x5d && !isWhitespace(bytes[i])) i++;
  return i;
}
