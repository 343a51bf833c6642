import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isUtf8Charset } from '../../src/http/content-type.js';
import { filterJsonAnswer, hasJsonNameEscape, ListFilter } from '../../src/mcp/list-filter.js';
import { ServerMessageFilter } from '../../src/mcp/server-message-filter.js';
import { SseListFilter, SseUncheckableEventError } from '../../src/mcp/sse-filter.js';

/**
 * The list filter judges an upstream answer only as every client would read it (issue 23 items
 * 6 and 7). JSON.parse keeps the last of duplicate keys and other parsers the first, so an
 * answer with a duplicate key anywhere could be judged on one list and read as another: it is
 * refused whole, in a JSON body and in an SSE event alike. Bytes that are not UTF-8 (or hold a
 * NUL, as UTF-16 text does) cannot be read as a client that honours another charset reads them:
 * refused too. Each rule has its control: the same answer made legal is filtered normally.
 */

const visible = (text: string) => !text.startsWith('hidden');
const listFilter = () => new ListFilter({ tool: visible, resource: visible, resourceTemplate: visible, prompt: visible });
/** What the relay puts answers through: the route's list filter, plus what a principal may hear. */
const relayFilter = () => new ServerMessageFilter(listFilter(), { markPrivate: false });

/** A JSON value whose object keys are written as the test chooses: plainly, or in escapes. */
type Node =
  | { readonly object: readonly Entry[] }
  | { readonly array: readonly Node[] }
  | { readonly leaf: string | number | boolean | null };
interface Entry {
  readonly key: string;
  /** The key as written in the JSON text (quotes included); JSON.stringify(key) by default. */
  readonly spelling?: string;
  readonly value: Node;
}

function serialize(node: Node): string {
  if ('leaf' in node) return JSON.stringify(node.leaf);
  if ('array' in node) return `[${node.array.map(serialize).join(',')}]`;
  return `{${node.object.map((entry) => `${entry.spelling ?? JSON.stringify(entry.key)}:${serialize(entry.value)}`).join(',')}}`;
}

/** The key spelled with `\uXXXX` escapes where `escape` says so (cycled), as a JSON string literal. */
function escapedSpelling(key: string, escape: readonly boolean[]): string {
  let text = '"';
  for (let i = 0; i < key.length; i++) {
    const unit = key.charCodeAt(i);
    text += escape[i % escape.length] ? `\\u${unit.toString(16).padStart(4, '0')}` : JSON.stringify(key[i]).slice(1, -1);
  }
  return `${text}"`;
}

const LISTS = [
  { member: 'tools', field: 'name' },
  { member: 'resources', field: 'uri' },
  { member: 'resourceTemplates', field: 'uriTemplate' },
  { member: 'prompts', field: 'name' },
] as const;

const keyArb = fc.oneof(fc.constantFrom('name', 'tools', 'result', 'id', 'uri', 'prompts', '_meta', 'description', 'a'), fc.string({ maxLength: 6 }));
const leafArb = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null)).map((leaf): Node => ({ leaf }));
const entriesArb = (value: fc.Arbitrary<Node>, reserved: readonly string[]) =>
  fc
    .uniqueArray(fc.tuple(keyArb, value), { selector: ([key]) => key, maxLength: 4 })
    .map((pairs) => pairs.filter(([key]) => !reserved.includes(key)).map(([key, value]): Entry => ({ key, value })));
const { tree: treeArb } = fc.letrec<{ tree: Node; object: Node; array: Node }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', maxDepth: 3 }, leafArb, tie('object'), tie('array')),
  object: entriesArb(tie('tree'), []).map((object): Node => ({ object })),
  array: fc.array(tie('tree'), { maxLength: 3 }).map((array): Node => ({ array })),
}));

/** A list answer: a response whose result holds one list (and whatever else), alone or in a batch. */
const answerArb = fc
  .record({
    list: fc.constantFrom(...LISTS),
    names: fc.array(fc.constantFrom('hidden_a', 'visible_b', 'hidden_c', 'visible_d', 'visible_e'), { minLength: 1, maxLength: 5 }),
    itemExtras: fc.array(entriesArb(treeArb, ['name', 'uri', 'uriTemplate']), { minLength: 5, maxLength: 5 }),
    resultExtras: entriesArb(treeArb, LISTS.map((list) => list.member)),
    topExtras: entriesArb(treeArb, ['jsonrpc', 'id', 'result', 'error', 'method']),
    id: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.string({ maxLength: 8 })),
    siblings: fc.array(treeArb, { maxLength: 2 }),
  })
  .map(({ list, names, itemExtras, resultExtras, topExtras, id, siblings }) => {
    const items = names.map((name, i): Node => ({ object: [{ key: list.field, value: { leaf: name } }, ...itemExtras[i]!] }));
    const result: Node = { object: [{ key: list.member, value: { array: items } }, ...resultExtras] };
    const response: Node = { object: [{ key: 'jsonrpc', value: { leaf: '2.0' } }, { key: 'id', value: { leaf: id } }, { key: 'result', value: result }, ...topExtras] };
    const body: Node = siblings.length === 0 ? response : { array: [response, ...siblings] };
    return { list, names, body };
  });

/** Every object in the tree, in document order. */
function objectsOf(node: Node, into: { object: readonly Entry[] }[] = []): { object: readonly Entry[] }[] {
  if ('object' in node) {
    into.push(node);
    for (const entry of node.object) objectsOf(entry.value, into);
  } else if ('array' in node) for (const item of node.array) objectsOf(item, into);
  return into;
}

/** The tree with a second entry of one key in the object at `target`, each copy spelled as chosen. */
function withDuplicate(node: Node, target: { object: readonly Entry[] }, duplicate: { pick: number; at: number; value: Node; spellings: readonly (readonly boolean[] | undefined)[] }): Node {
  if ('leaf' in node) return node;
  if ('array' in node) return { array: node.array.map((item) => withDuplicate(item, target, duplicate)) };
  const entries = node.object.map((entry) => ({ ...entry, value: withDuplicate(entry.value, target, duplicate) }));
  if (node !== target) return { object: entries };
  const spell = (key: string, which: number) => {
    const escape = duplicate.spellings[which];
    return escape === undefined ? JSON.stringify(key) : escapedSpelling(key, escape);
  };
  if (entries.length === 0) {
    return { object: [{ key: 'k', spelling: spell('k', 0), value: { leaf: 1 } }, { key: 'k', spelling: spell('k', 1), value: duplicate.value }] };
  }
  const original = duplicate.pick % entries.length;
  const key = entries[original]!.key;
  entries[original] = { ...entries[original]!, spelling: spell(key, 0) };
  entries.splice(duplicate.at % (entries.length + 1), 0, { key, spelling: spell(key, 1), value: duplicate.value });
  return { object: entries };
}

const duplicateArb = fc.record({
  target: fc.nat(),
  pick: fc.nat(),
  at: fc.nat(),
  value: treeArb,
  spellings: fc.array(fc.option(fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }), { nil: undefined }), { minLength: 2, maxLength: 2 }),
});

/** The list's names as the filtered answer has them (the response is the body or its first element). */
function listedNames(bytes: Buffer, list: (typeof LISTS)[number]): unknown[] {
  const parsed = JSON.parse(bytes.toString('utf8')) as unknown;
  const response = (Array.isArray(parsed) ? parsed[0] : parsed) as { result: Record<string, { [field: string]: unknown }[]> };
  return response.result[list.member]!.map((item) => item[list.field]);
}

/** Runs one SSE event through the relay's stream filter; what the client would receive. */
function throughSse(json: string): Buffer {
  const out: Buffer[] = [];
  const filter = new SseListFilter(relayFilter());
  filter.write(Buffer.from(`event: message\ndata: ${json}\n\n`), out);
  filter.end(out);
  return Buffer.concat(out);
}

/** Splits bytes into the chunks they may arrive in. */
const chunked = (bytes: Buffer, cut: number) => (bytes.length < 2 ? [bytes] : [bytes.subarray(0, 1 + (cut % (bytes.length - 1))), bytes.subarray(1 + (cut % (bytes.length - 1)))]);

describe('for any list answer with a duplicate key anywhere, nothing is relayed', () => {
  it('refuses it in a JSON body and cuts it in an SSE event, however the keys are spelled; the same answer without the duplicate is filtered', () => {
    fc.assert(
      fc.property(answerArb, duplicateArb, fc.nat(), ({ list, names, body }, duplicate, cut) => {
        // Control: the answer as generated is legal, filtered to exactly its visible items.
        const legal = Buffer.from(serialize(body));
        const expected = names.filter(visible);
        const filtered = listFilter().filterJsonBody(legal);
        expect(filtered && listedNames(filtered, list)).toEqual(expected);
        expect(listedNames(throughSse(legal.toString('utf8')).subarray('event: message\ndata: '.length), list)).toEqual(expected);

        const objects = objectsOf(body);
        const attacked = serialize(withDuplicate(body, objects[duplicate.target % objects.length]!, duplicate));
        const bytes = Buffer.from(attacked);
        expect(listFilter().filterJsonBody(bytes)).toBeUndefined();
        expect(filterJsonAnswer(relayFilter(), chunked(bytes, cut))).toBeUndefined();
        expect(() => throughSse(attacked)).toThrow(SseUncheckableEventError);
      }),
      { numRuns: 1500 },
    );
  });

  it('refuses the duplicate whichever filter state it meets: after the legal answer was remembered as a template', () => {
    const filter = listFilter();
    const legal = '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"hidden_a"},{"name":"visible_b"}]}}';
    expect(filter.filterJsonBody(Buffer.from(legal))!.toString()).toBe('{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"visible_b"}]}}');
    // Remembered: the same answer under id 2 is served from the template.
    expect(filter.filterJsonBody(Buffer.from(legal.replace('"id":1', '"id":2')))!.toString()).toContain('"id":2');
    for (const attack of [
      legal.replace('"id":1', '"id":2').replace('"result":{', '"result":{"tools":[],'),
      legal.replace('"id":1', '"id":2,"id":3'),
      legal.replace('{"name":"hidden_a"}', '{"name":"hidden_a","\\u006eame":"visible_x"}'),
    ]) {
      expect(filter.filterJsonBody(Buffer.from(attack))).toBeUndefined();
    }
  });
});

describe('a batch carried by one SSE event (2025-03-26: streamed messages "MAY be batched")', () => {
  it('is filtered message by message: hidden items out, notifications the principal may not hear dropped, an emptied event dropped whole', () => {
    const filter = new ServerMessageFilter(listFilter(), { markPrivate: false, listVisible: (list) => list !== 'prompts/list' });
    const run = (json: string) => {
      const out: Buffer[] = [];
      const sse = new SseListFilter(filter);
      sse.write(Buffer.from(`id: 7\ndata: ${json}\n\n`), out);
      sse.end(out);
      return Buffer.concat(out).toString('utf8');
    };
    const batch = '[{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"},{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"hidden_a"},{"name":"visible_b"}]}}]';
    expect(run(batch)).toBe('id: 7\ndata: [{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"visible_b"}]}}]\n\n');
    expect(run('[{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}]')).toBe('');
    // Control: a batch with nothing to hide passes byte for byte.
    const clean = '[{"jsonrpc":"2.0","method":"notifications/tools/list_changed"},{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"visible_b"}]}}]';
    expect(run(clean)).toBe(`id: 7\ndata: ${clean}\n\n`);
  });
});

describe('answers the filter cannot read as UTF-8 JSON', () => {
  const answer = '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"hidden_a"},{"name":"visible_b","description":"café ✓"}]}}';

  it('refuses a JSON answer in UTF-16 (with or without a byte-order mark), Latin-1 bytes, or holding a NUL', () => {
    for (const bytes of [
      Buffer.from(answer, 'utf16le'),
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(answer, 'utf16le')]),
      Buffer.from(answer, 'latin1'),
      Buffer.from(answer.replace('café', 'caf\u0000')),
    ]) {
      expect(filterJsonAnswer(relayFilter(), [bytes])).toBeUndefined();
    }
    // Control: the same answer in UTF-8 is filtered.
    expect(listFilter().filterJsonBody(Buffer.from(answer))!.toString()).toBe('{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"visible_b","description":"café ✓"}]}}');
  });

  it('has a NUL byte send an answer to be parsed, never cleared by the byte search', () => {
    const utf16 = Buffer.from('{"id":1,"result":{"tools":[{"name":"hidden_a"}]}}', 'utf16le');
    expect(listFilter().namesAList(utf16)).toBe(false);
    expect(hasJsonNameEscape(utf16)).toBe(true);
    expect(hasJsonNameEscape(Buffer.from(answer))).toBe(false);
  });

  it('cuts an SSE stream at an event in UTF-16 or with bytes that are not UTF-8; the event before it passes', () => {
    const before = Buffer.from('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n');
    for (const bad of [Buffer.from(`event: message\ndata: ${answer}\n\n`, 'utf16le'), Buffer.from(`event: message\ndata: ${answer}\n\n`, 'latin1')]) {
      const out: Buffer[] = [];
      const filter = new SseListFilter(relayFilter());
      filter.write(before, out);
      expect(() => {
        filter.write(bad, out);
        filter.end(out);
      }).toThrow(SseUncheckableEventError);
      expect(Buffer.concat(out).equals(before)).toBe(true);
    }
    // Control: the same stream in UTF-8 passes, filtered.
    const out: Buffer[] = [];
    const filter = new SseListFilter(relayFilter());
    filter.write(Buffer.concat([before, Buffer.from(`event: message\ndata: ${answer}\n\n`)]), out);
    filter.end(out);
    const text = Buffer.concat(out).toString('utf8');
    expect(text.startsWith(before.toString())).toBe(true);
    expect(text).toContain('visible_b');
    expect(text).not.toContain('hidden_a');
  });

  it.each([undefined, 'application/json', 'application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'text/event-stream; charset=utf8', 'text/event-stream'])(
    'takes %s as UTF-8',
    (contentType) => expect(isUtf8Charset(contentType)).toBe(true),
  );

  it.each(['application/json; charset=utf-16le', 'application/json; charset="UTF-16"', 'text/event-stream; charset=iso-8859-1', 'application/json; charset=utf-8; charset=utf-16', 'application/json; charset='])(
    'takes %s as another charset, which the filter cannot vouch for',
    (contentType) => expect(isUtf8Charset(contentType)).toBe(false),
  );
});
