import { isUtf8 } from 'node:buffer';
import { AnswerTemplates } from './answer-template.js';
import { isObject } from './message.js';
import { findDuplicateKey } from './strict-json.js';

/**
 * What a filter does with one server message: pass it as is, pass it rewritten, or drop it;
 * 'exempt' passes it as is without judging it (a tool's result), so it is never remembered as a
 * judged answer.
 */
export type FilterOutcome = 'keep' | 'changed' | 'drop' | 'exempt';

/** Filters server messages in a JSON body or an SSE stream (see SseListFilter). */
export interface MessageFilter {
  /** Cheap test on the raw bytes: false means the message certainly passes unchanged. */
  mayConcern(bytes: Buffer): boolean;
  /** Rewrites the parsed message in place when it returns 'changed'. */
  apply(message: unknown): FilterOutcome;
  /** Where lone responses this filter already filtered are remembered (see AnswerTemplates). */
  answerTemplates?(): AnswerTemplates | undefined;
}

/** Which listed items may be shown; an absent function shows every item of that list. */
export interface ListVisibility {
  readonly tool?: (name: string) => boolean;
  readonly resource?: (uri: string) => boolean;
  readonly resourceTemplate?: (uriTemplate: string) => boolean;
  readonly prompt?: (name: string) => boolean;
}

/** Each list result the gateway filters: the member holding the items, and the field naming one. */
const LISTS = [
  { member: 'tools', field: 'name', visible: 'tool' },
  { member: 'resources', field: 'uri', visible: 'resource' },
  { member: 'resourceTemplates', field: 'uriTemplate', visible: 'resourceTemplate' },
  { member: 'prompts', field: 'name', visible: 'prompt' },
] as const;

/**
 * Removes hidden items from every list result the upstream sends (tools/list, resources/list,
 * resources/templates/list, prompts/list), whatever request it claims to answer. Matching
 * answers to the body's own list request ids is not enough: an upstream may deliver an answer on
 * another stream (two concurrent POSTs reusing an id, or a resumed GET stream replaying earlier
 * answers, Streamable HTTP §Resumability and Redelivery), so any response carrying a list is
 * filtered.
 */
export class ListFilter implements MessageFilter {
  private readonly lists: readonly { member: string; field: string; isVisible: (value: string) => boolean }[];
  private readonly needles: readonly Buffer[];
  /**
   * Answers this filter already filtered, as templates around their id; one set for answers
   * marked private (2026-07-28) and one for the rest. Shared by every request on the route: a
   * response's filtering depends on the route's policy only.
   */
  private readonly templates: { readonly plain: AnswerTemplates; readonly markedPrivate: AnswerTemplates };

  constructor(visibility: ListVisibility) {
    this.lists = LISTS.flatMap(({ member, field, visible }) => {
      const isVisible = visibility[visible];
      return isVisible ? [{ member, field, isVisible }] : [];
    });
    // Searched as bytes made once: a string needle is encoded to UTF-8 again on every search.
    this.needles = this.lists.map(({ member }) => Buffer.from(`"${member}"`));
    const isListAnswer = (message: Record<string, unknown>) => isObject(message.result) && this.lists.some(({ member }) => Array.isArray((message.result as Record<string, unknown>)[member]));
    this.templates = { plain: new AnswerTemplates(isListAnswer), markedPrivate: new AnswerTemplates(isListAnswer) };
  }

  mayConcern(bytes: Buffer): boolean {
    return this.mayCarryList(bytes);
  }

  apply(message: unknown): FilterOutcome {
    return this.filterMessage(message) ? 'changed' : 'keep';
  }

  /** Filters one server message in place; returns true when it changed. */
  filterMessage(message: unknown): boolean {
    if (!isObject(message) || !('id' in message) || !('result' in message)) return false;
    const result = message.result;
    if (!isObject(result)) return false;
    let changed = false;
    for (const { member, field, isVisible } of this.lists) {
      const items = result[member];
      if (!Array.isArray(items)) continue;
      const visible = items.filter((item) => isObject(item) && typeof item[field] === 'string' && isVisible(item[field]));
      if (visible.length === items.length) continue;
      result[member] = visible;
      changed = true;
    }
    return changed;
  }

  /**
   * Filters a whole JSON body (one message or a batch); returns the bytes to send, or undefined
   * when the body cannot be read: an answer that cannot be checked is not passed on.
   */
  filterJsonBody(body: Buffer): Buffer | undefined {
    return filterJsonBody(this, body, this.templates.plain);
  }

  /** The templates for answers filtered with (or without) the private mark. */
  answerTemplates(markPrivate = false): AnswerTemplates {
    return markPrivate ? this.templates.markedPrivate : this.templates.plain;
  }

  /**
   * Cheap test before parsing: a list member needs the bytes `"tools"` (or `"prompts"`, …), which
   * a JSON string value cannot contain unescaped (its quotes would be `\"`), so most results are
   * never parsed.
   */
  mayCarryList(bytes: Buffer): boolean {
    return hasJsonNameEscape(bytes) || this.namesAList(bytes);
  }

  /** Whether the bytes name a list member unescaped (mayCarryList without the escape check). */
  namesAList(bytes: Buffer): boolean {
    return this.needles.some((needle) => bytes.indexOf(needle) !== -1);
  }
}

/**
 * A JSON answer through a filter: untouched bytes unless a message in it changed (one message or a
 * batch; a JSON body holds responses only, so nothing is dropped), undefined when it cannot be read.
 */
export function filterJsonBody(filter: MessageFilter, body: Buffer, templates?: AnswerTemplates): Buffer | undefined {
  const parts = filterJsonAnswer(filter, [body], templates);
  return parts && (parts.length === 1 ? parts[0] : Buffer.concat(parts));
}

/**
 * As filterJsonBody, for an answer in the chunks it arrived in: the bytes to send, in parts to
 * write in order (a remembered answer is neither joined nor copied), or undefined.
 */
export function filterJsonAnswer(filter: MessageFilter, chunks: readonly Buffer[], templates?: AnswerTemplates): readonly Buffer[] | undefined {
  // First the templates: an answer that matches one is a response already checked in full, and
  // its lookup costs less than the byte searches of mayConcern on a large list.
  const known = templates?.lookupParts(chunks);
  if (known) return known;
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  // JSON is UTF-8 (RFC 8259 §8.1): bytes that are not cannot be read as the client may read them.
  if (!isUtf8(body)) return undefined;
  if (!filter.mayConcern(body)) return [body];
  const parsed = parseStrictJson(body);
  if (parsed === undefined) return undefined;
  const messages = Array.isArray(parsed.value) ? parsed.value : [parsed.value];
  let changed = false;
  let judged = true;
  // A notification the principal must not hear is dropped here as on a stream (a JSON answer
  // should hold responses only, but a client acts on whatever it holds).
  const kept = messages.filter((message) => {
    const outcome = filter.apply(message);
    changed = outcome === 'changed' || outcome === 'drop' || changed;
    judged = outcome !== 'exempt' && judged;
    return outcome !== 'drop';
  });
  // Nothing left to relay (a lone message dropped): the answer is refused rather than emptied.
  if (kept.length === 0) return undefined;
  const value = Array.isArray(parsed.value) ? kept : parsed.value;
  // A lone response (no method), judged by the route's policy alone: its template may serve the
  // next request with the same answer.
  if (templates && judged && isObject(value) && !('method' in value)) return [templates.remember(body, value, changed)];
  return [changed ? Buffer.from(JSON.stringify(value)) : body];
}

/**
 * An answer as the filter may judge it: valid JSON without a duplicate key anywhere. JSON.parse
 * keeps the last of duplicate keys and other parsers the first, so `"tools":[hidden],"tools":[]`
 * would be judged on one list and read by a client as the other: such an answer is not passed on.
 */
export function parseStrictJson(bytes: Buffer): { value: unknown } | undefined {
  const text = bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return findDuplicateKey(text) === undefined ? { value } : undefined;
}

/**
 * Whether JSON text may spell a member or method name in escapes (`"\u0074ools"`,
 * `"notifications\/resources\/updated"`): the only escapes that can produce letters or a slash.
 * Such text cannot be cleared by a byte search, so it is parsed. A `\n` in a tool's text is not one.
 * A NUL byte is never in JSON text, but is in every UTF-16 or UTF-32 encoding of it (RFC 4627
 * §3), where the names are not found as UTF-8 bytes: such text is parsed too, and refused.
 */
export function hasJsonNameEscape(bytes: Buffer): boolean {
  return bytes.indexOf(UNICODE_ESCAPE) !== -1 || bytes.indexOf(SOLIDUS_ESCAPE) !== -1 || bytes.indexOf(0) !== -1;
}

const UNICODE_ESCAPE = Buffer.from('\\u');
const SOLIDUS_ESCAPE = Buffer.from('\\/');
