import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AnswerTemplates, isPlainIdToken, topLevelIdSpan } from '../../src/mcp/answer-template.js';
import { ListFilter, filterJsonBody } from '../../src/mcp/list-filter.js';
import { ServerMessageFilter } from '../../src/mcp/server-message-filter.js';
import { SseListFilter } from '../../src/mcp/sse-filter.js';

const visible = (name: string) => !name.startsWith('admin_');
const tool = (name: string) => ({ name, description: `does ${name}`, inputSchema: { type: 'object' } });
const TOOLS = [tool('search'), tool('admin_wipe'), tool('fetch'), tool('admin_grant')];
const answer = (id: unknown, tools = TOOLS) => Buffer.from(JSON.stringify({ result: { tools }, jsonrpc: '2.0', id }));
/** The text a span finder points at in `text` (ASCII test inputs: bytes and characters agree). */
const spanOf = (find: (bytes: Buffer) => { start: number; end: number } | undefined) => (text: string) => {
  const found = find(Buffer.from(text));
  return found && text.slice(found.start, found.end);
};
const names = (bytes: Buffer) => (JSON.parse(bytes.toString()) as { result: { tools: { name: string }[] } }).result.tools.map((t) => t.name);

describe('answer templates (filtered list answers reused around their id)', () => {
  it('serves the next identical answer with another id from the template, byte for byte what full filtering gives', () => {
    const filter = new ListFilter({ tool: visible });
    const first = filter.filterJsonBody(answer(1))!;
    expect(names(first)).toEqual(['search', 'fetch']);
    const templates = filter.answerTemplates(false);
    for (const id of [2, 12345, -7, 0, 'req-9', '', 'a b:c.d_e-f']) {
      const body = answer(id);
      const reused = templates.lookup(body);
      expect(reused, String(id)).toEqual(Buffer.from(JSON.stringify({ result: { tools: [TOOLS[0], TOOLS[2]] }, jsonrpc: '2.0', id })));
      expect(filter.filterJsonBody(body)!.equals(reused!)).toBe(true);
    }
  });

  it('misses, and filters in full, when anything but a plain id differs', () => {
    const filter = new ListFilter({ tool: visible });
    filter.filterJsonBody(answer(1));
    const templates = filter.answerTemplates(false);
    // Another list, a hidden tool renamed, an id with a quote or escape, a fraction or exponent.
    expect(templates.lookup(answer(2, [tool('search'), tool('admin_wipe')]))).toBeUndefined();
    expect(templates.lookup(answer(2, [tool('search'), tool('admin_wipf'), tool('fetch'), tool('admin_grant')]))).toBeUndefined();
    expect(templates.lookup(answer('a"b'))).toBeUndefined();
    expect(templates.lookup(answer('a\\b'))).toBeUndefined();
    expect(templates.lookup(answer('é'))).toBeUndefined();
    expect(templates.lookup(Buffer.from(answer(1).toString().replace('"id":1', '"id":1.5')))).toBeUndefined();
    expect(templates.lookup(Buffer.from(answer(1).toString().replace('"id":1', '"id":1e3')))).toBeUndefined();
    expect(templates.lookup(Buffer.from(answer(1).toString().replace('"id":1', '"id":01')))).toBeUndefined();
  });

  it('never lets structure in through the id: a body smuggling a second result where the id was is filtered in full', () => {
    const filter = new ListFilter({ tool: visible });
    filter.filterJsonBody(answer(1));
    const template = answer(1).toString();
    const at = template.lastIndexOf('"id":1') + '"id":'.length;
    const smuggled = Buffer.from(`${template.slice(0, at)}1,"result":{"tools":[{"name":"admin_wipe"}]},"x":2${template.slice(at + 1)}`);
    expect(filter.answerTemplates(false).lookup(smuggled)).toBeUndefined();
    // Two "result"s: JSON.parse would judge the last, a client may read the first; refused whole.
    expect(filter.filterJsonBody(smuggled)).toBeUndefined();
  });

  it('keeps no template for bodies whose id it cannot pin down', () => {
    const filter = new ListFilter({ tool: visible });
    const dup = Buffer.from('{"id":1,"result":{"tools":[{"name":"admin_x"},{"name":"a"}]},"id":2}');
    expect(filter.filterJsonBody(dup)).toBeUndefined();
    expect(filter.answerTemplates(false).lookup(Buffer.from('{"id":1,"result":{"tools":[{"name":"admin_x"},{"name":"a"}]},"id":3}'))).toBeUndefined();
    const batch = Buffer.from(JSON.stringify([{ jsonrpc: '2.0', id: 1, result: { tools: TOOLS } }]));
    expect(names(Buffer.from(JSON.stringify((JSON.parse(filter.filterJsonBody(batch)!.toString()) as unknown[])[0])))).toEqual(['search', 'fetch']);
  });

  it('keeps a separate template for answers marked private (2026-07-28), which carry cacheScope', () => {
    const lists = new ListFilter({ tool: visible });
    const marked = new ServerMessageFilter(lists, { markPrivate: true });
    const plain = new ServerMessageFilter(lists, { markPrivate: false });
    expect(JSON.parse(marked.filterJsonBody(answer(1))!.toString()).result.cacheScope).toBe('private');
    expect(JSON.parse(plain.filterJsonBody(answer(2))!.toString()).result.cacheScope).toBeUndefined();
    expect(JSON.parse(marked.filterJsonBody(answer(3))!.toString()).result.cacheScope).toBe('private');
    expect(JSON.parse(plain.filterJsonBody(answer(4))!.toString()).result.cacheScope).toBeUndefined();
  });

  it('finds the top-level id only: nested ids, escaped key spellings and whitespace', () => {
    const span = spanOf(topLevelIdSpan);
    expect(span('{"result":{"id":9,"tools":[{"id":8}]},"jsonrpc":"2.0","id":7}')).toBe('7');
    expect(span('{ "id" : "x" , "result" : { } }')).toBe('"x"');
    expect(span('{"\\u0069d":5,"result":{}}')).toBe('5');
    expect(span('{"i\\"d":5,"result":{"s":"\\"id\\":4"}}')).toBeUndefined();
    expect(span('{"result":{}}')).toBeUndefined();
    expect(span('[{"id":1}]')).toBeUndefined();
  });

  it('accepts as plain ids only integers and quote-free printable strings', () => {
    const plain = ['0', '-1', '42', '"abc"', '""', '"a b"'];
    const notPlain = ['', '-', '01', '1.0', '1e2', 'true', 'null', '"a\\"b"', '"a', '"\u00e9"', '"\t"'];
    for (const token of plain) expect(isPlainIdToken(Buffer.from(token)), token).toBe(true);
    for (const token of notPlain) expect(isPlainIdToken(Buffer.from(token)), token).toBe(false);
  });

  it('property: with templates, every answer filters exactly as it does without them', () => {
    const name = fc.oneof(fc.constantFrom('search', 'fetch', 'admin_wipe', 'admin_grant'), fc.string({ maxLength: 6 }).map((s) => `admin_${s}`), fc.string({ maxLength: 6 }));
    const id = fc.oneof(fc.integer({ min: -1e6, max: 1e6 }), fc.string({ maxLength: 8 }), fc.constantFrom(1, 2, 'x'));
    const body = fc.record({ id, tools: fc.array(name, { maxLength: 5 }), idFirst: fc.boolean(), extra: fc.option(fc.string({ maxLength: 4 })) }).map(({ id, tools, idFirst, extra }) => {
      const result = { tools: tools.map((n) => ({ name: n })), ...(extra === null ? {} : { nextCursor: extra }) };
      return Buffer.from(JSON.stringify(idFirst ? { jsonrpc: '2.0', id, result } : { result, jsonrpc: '2.0', id }));
    });
    fc.assert(
      fc.property(fc.array(body, { minLength: 1, maxLength: 12 }), (bodies) => {
        const withTemplates = new ListFilter({ tool: visible });
        const reference = new ListFilter({ tool: visible });
        for (const b of bodies) {
          const got = withTemplates.filterJsonBody(b);
          const want = filterJsonBody(reference, b);
          expect(got && JSON.parse(got.toString())).toEqual(want && JSON.parse(want.toString()));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('holds at most a few templates, newest first', () => {
    const templates = new AnswerTemplates();
    const filter = new ListFilter({ tool: visible });
    const lists = [0, 1, 2, 3, 4].map((n) => [tool(`t${n}`), tool('admin_x')]);
    for (const [i, tools] of lists.entries()) templates.remember(answer(i, tools), (() => { const m = JSON.parse(answer(i, tools).toString()); filter.filterMessage(m); return m; })(), true);
    expect(templates.lookup(answer(99, lists[0]))).toBeUndefined();
    expect(names(templates.lookup(answer(99, lists[4]))!)).toEqual(['t4']);
    expect(names(templates.lookup(answer(99, lists[1]))!)).toEqual(['t1']);
  });
});

describe('answer templates over chunks (an answer as it arrived, never joined)', () => {
  it('matches and rebuilds an answer split at every byte boundary, the id straddling chunks included', () => {
    const filter = new ListFilter({ tool: visible });
    filter.filterJsonBody(answer(1));
    const templates = filter.answerTemplates(false);
    const body = answer('req-12345');
    const want = Buffer.concat(templates.lookupParts([body])! as Buffer[]);
    for (let cut = 1; cut < body.length; cut++) {
      for (const chunks of [[body.subarray(0, cut), body.subarray(cut)], [body.subarray(0, Math.floor(cut / 2)), body.subarray(Math.floor(cut / 2), cut), body.subarray(cut)]]) {
        const parts = templates.lookupParts(chunks);
        expect(parts && Buffer.concat(parts as Buffer[]).equals(want), `cut at ${cut}`).toBe(true);
      }
    }
    // One byte changed anywhere but in the id, in any chunk: a miss.
    const changed = Buffer.from(body);
    changed[10] = changed[10]! ^ 1;
    expect(templates.lookupParts([changed.subarray(0, 5), changed.subarray(5)])).toBeUndefined();
  });
});

describe('answer templates in SSE streams (a list answered as an event)', () => {
  /** The same filter without templates: the full path only, as the reference. */
  const withoutTemplates = (filter: ListFilter) => ({ mayConcern: (b: Buffer) => filter.mayConcern(b), apply: (m: unknown) => filter.apply(m) });

  async function through(filter: ConstructorParameters<typeof SseListFilter>[0], stream: string): Promise<string> {
    const sse = new SseListFilter(filter);
    const out: Buffer[] = [];
    sse.write(Buffer.from(stream), out);
    sse.end(out);
    return Buffer.concat(out).toString();
  }

  /** The client's view: each event's data, parsed (WHATWG HTML event stream interpretation). */
  function messages(text: string): unknown[] {
    const out: unknown[] = [];
    let data: string[] = [];
    for (const line of text.split(/\r\n|\r|\n/)) {
      if (line === '') {
        if (data.length > 0) out.push(JSON.parse(data.join('\n')));
        data = [];
      } else if (line === 'data' || line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    return out;
  }

  it('serves the next list event from the template, event id lines and all', async () => {
    const filter = new ListFilter({ tool: visible });
    const event = (eventId: string, id: number) => `event: message\nid: ${eventId}\ndata: ${JSON.stringify({ result: { tools: TOOLS }, jsonrpc: '2.0', id })}\n\n`;
    expect(messages(await through(filter, event('e1', 1))).map((m) => names(Buffer.from(JSON.stringify(m))))).toEqual([['search', 'fetch']]);
    const second = event('e2', 2);
    const data = Buffer.from(second.split('\n')[2]!.slice('data: '.length));
    // The template is there to serve it.
    expect(filter.answerTemplates().lookup(data)).toEqual(Buffer.from(JSON.stringify({ result: { tools: [TOOLS[0], TOOLS[2]] }, jsonrpc: '2.0', id: 2 })));
    const out = await through(filter, second);
    expect(out).toContain('id: e2\n');
    expect(messages(out)).toEqual([{ result: { tools: [TOOLS[0], TOOLS[2]] }, jsonrpc: '2.0', id: 2 }]);
  });

  it('finds the one data line only where there is exactly one, spelled data: or data:<space>', async () => {
    const { singleDataPayload } = await import('../../src/mcp/sse-filter.js');
    const span = spanOf(singleDataPayload);
    expect(span('event: message\ndata: {"a":1}')).toBe('{"a":1}');
    expect(span('data:{"a":1}\r\nid: 7')).toBe('{"a":1}');
    expect(span('id: 7\rdata: x')).toBe('x');
    expect(span('data: a\ndata: b')).toBeUndefined();
    expect(span('data\ndata: b')).toBeUndefined();
    expect(span('datax: b')).toBeUndefined();
    expect(span('\ufeffdata: x')).toBeUndefined();
    expect(span('event: ping')).toBeUndefined();
  });

  it('property: with templates, every stream reads to the client exactly as without them', async () => {
    const name = fc.oneof(fc.constantFrom('search', 'fetch', 'admin_wipe'), fc.string({ maxLength: 5 }).map((s) => `admin_${s}`));
    const message = fc.oneof(
      fc.record({ id: fc.oneof(fc.integer({ min: -50, max: 50 }), fc.string({ maxLength: 6 })), tools: fc.array(name, { maxLength: 4 }) }).map(({ id, tools }) => ({ result: { tools: tools.map((n) => ({ name: n })) }, jsonrpc: '2.0', id })),
      fc.constant({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } }),
    );
    const event = fc.record({ message, eol: fc.constantFrom('\n', '\r\n', '\r'), eventId: fc.option(fc.string({ maxLength: 4 }).filter((s) => !/[\r\n]/.test(s))), space: fc.boolean(), split: fc.boolean() }).map(({ message, eol, eventId, space, split }) => {
      const text = JSON.stringify(message);
      // Two data lines join with a newline: split right after the opening brace, where JSON allows one.
      const data = split ? [text.slice(0, 1), text.slice(1)] : [text];
      const lines = ['event: message', ...(eventId === null ? [] : [`id: ${eventId}`]), ...data.map((d) => `data:${space ? ' ' : ''}${d}`)];
      return lines.join(eol) + eol + eol;
    });
    await fc.assert(
      fc.asyncProperty(fc.array(event, { minLength: 1, maxLength: 8 }), async (events) => {
        const templated = new ListFilter({ tool: visible });
        for (const e of events) {
          const got = messages(await through(templated, e));
          const want = messages(await through(withoutTemplates(new ListFilter({ tool: visible })), e));
          expect(got).toEqual(want);
          expect(JSON.stringify(got)).not.toMatch(/"name":"admin_/);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('answer templates never carry one principal\'s decision to another', () => {
  // A resources/updated notification decides per principal. JSON-RPC gives notifications no id,
  // but an upstream may send one anyway: it must still be judged for each principal, never
  // served from what an earlier principal was allowed to hear.
  const update = (id: number) => ({ jsonrpc: '2.0', id, method: 'notifications/resources/updated', params: { uri: 'file:///secret/plan.txt' } });
  const lists = () => new ListFilter({ tool: visible });

  it('in JSON bodies: a message with a method is never remembered', () => {
    const shared = lists();
    const mayRead = new ServerMessageFilter(shared, { markPrivate: false, resourceUpdateVisible: () => true });
    expect(mayRead.filterJsonBody(Buffer.from(JSON.stringify(update(1))))?.toString()).toContain('secret');
    expect(shared.answerTemplates().lookup(Buffer.from(JSON.stringify(update(2))))).toBeUndefined();
  });

  it('in SSE streams', async () => {
    const shared = lists();
    const run = async (visible: boolean, id: number) => {
      const sse = new SseListFilter(new ServerMessageFilter(shared, { markPrivate: false, resourceUpdateVisible: () => visible }));
      const out: Buffer[] = [];
      sse.write(Buffer.from(`event: message\ndata: ${JSON.stringify(update(id))}\n\n`), out);
      sse.end(out);
      return Buffer.concat(out).toString();
    };
    expect(await run(true, 1)).toContain('secret');
    expect(await run(false, 2)).not.toContain('secret');
  });
});

describe('what answer templates keep', () => {
  it('keeps list answers only: tool results that needed checking do not push the lists out', () => {
    const filter = new ListFilter({ tool: visible });
    filter.filterJsonBody(answer(1));
    // A tool result with a \u escape must be parsed (it could spell "tools"), but is no list.
    // Each a different result, so none matches another's template.
    for (let id = 10; id < 20; id++) filter.filterJsonBody(Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `caf\u00e9 ${id}` }] } }).replace('\u00e9', '\\u00e9')));
    expect(filter.answerTemplates().lookup(answer(2))).toEqual(answer(2, [TOOLS[0]!, TOOLS[2]!]));
    expect(filter.answerTemplates().lookup(Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 21, result: { content: [{ type: 'text', text: 'caf\\u00e9' }] } })))).toBeUndefined();
  });
});
