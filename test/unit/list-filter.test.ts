import { describe, expect, it } from 'vitest';
import type { JsonRpcId } from '../../src/errors.js';
import { ListFilter } from '../../src/mcp/list-filter.js';
import { SseListFilter } from '../../src/mcp/sse-filter.js';

const HIDDEN = 'secret_tool';
const isVisible = (name: string) => name !== HIDDEN && name !== 'unlisted_tool';

function listFilter(): ListFilter {
  return new ListFilter({ tool: isVisible });
}

function tool(name: string, description = `${name} does things`): Record<string, unknown> {
  return { name, description, inputSchema: { type: 'object' } };
}

function listResponse(id: JsonRpcId, names: string[]): Record<string, unknown> {
  return { jsonrpc: '2.0', id, result: { tools: names.map((n) => tool(n)) } };
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const toolNames = (message: unknown) => ((message as { result: { tools: { name: string }[] } }).result.tools).map((t) => t.name);

describe('ToolsListFilter.filterJsonBody', () => {
  it('removes hidden tools from a tools/list answer', () => {
    const out = listFilter().filterJsonBody(json(listResponse(1, ['list_todos', HIDDEN, 'add_todo', 'unlisted_tool'])))!;
    expect(toolNames(JSON.parse(out.toString()))).toEqual(['list_todos', 'add_todo']);
  });

  it('keeps the rest of the result and message intact', () => {
    const response = { jsonrpc: '2.0', id: 'q', result: { tools: [tool('a'), tool(HIDDEN)], nextCursor: 'c2', _meta: { x: 1 } } };
    const out = JSON.parse(listFilter().filterJsonBody(json(response))!.toString());
    expect(out).toEqual({ jsonrpc: '2.0', id: 'q', result: { tools: [tool('a')], nextCursor: 'c2', _meta: { x: 1 } } });
  });

  it('filters a list answer whatever its id: an upstream may deliver it on another stream', () => {
    for (const id of [2, '2', 'replayed-7', 0]) {
      const out = listFilter().filterJsonBody(json(listResponse(id, ['list_todos', HIDDEN])))!;
      expect(toolNames(JSON.parse(out.toString()))).toEqual(['list_todos']);
    }
  });

  it('does not parse a body that has no tools member, even one that is not JSON', () => {
    const body = Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"say \\"tools\\" here"}]');
    expect(listFilter().filterJsonBody(body)).toBe(body);
  });

  it('returns the same Buffer when every tool is visible', () => {
    const body = json(listResponse(1, ['list_todos', 'add_todo']));
    const filter = listFilter();
    expect(filter.filterJsonBody(body)).toBe(body);
  });

  it('refuses to pass on a body it cannot read, rather than pass it unfiltered', () => {
    const body = Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret_tool"}');
    expect(listFilter().filterJsonBody(body)).toBeUndefined();
  });

  it('filters every answer to a repeated id in a batch, not just the first', () => {
    const filter = listFilter();
    const out = filter.filterJsonBody(json([listResponse(1, [HIDDEN, 'a']), listResponse(1, [HIDDEN, 'b'])]))!;
    const messages = JSON.parse(out.toString()) as unknown[];
    expect(messages.map(toolNames)).toEqual([['a'], ['b']]);
  });


  it('ignores a server request that carries tools in its params', () => {
    const body = json({ jsonrpc: '2.0', id: 1, method: 'sampling/createMessage', params: { tools: [tool(HIDDEN)] } });
    expect(listFilter().filterJsonBody(body)).toBe(body);
  });

  it('passes an error answer unchanged', () => {
    const body = json({ jsonrpc: '2.0', id: 1, error: { code: -32603, message: 'boom', data: { tools: [HIDDEN] } } });
    expect(listFilter().filterJsonBody(body)).toBe(body);
  });

  it('filters every list in a batch answer and leaves the other answers alone', () => {
    const batch = [
      listResponse(1, ['a', HIDDEN]),
      { jsonrpc: '2.0', id: 2, result: { content: [{ type: 'text', text: 'x' }] } },
      listResponse(3, [HIDDEN, 'b']),
    ];
    const out = JSON.parse(listFilter().filterJsonBody(json(batch))!.toString()) as unknown[];
    expect(toolNames(out[0])).toEqual(['a']);
    expect(out[1]).toEqual(batch[1]);
    expect(toolNames(out[2])).toEqual(['b']);
  });

  it('drops malformed tool entries from a tracked list', () => {
    const response = { jsonrpc: '2.0', id: 1, result: { tools: [tool('a'), { description: 'no name' }, 'text', null] } };
    const out = JSON.parse(listFilter().filterJsonBody(json(response))!.toString());
    expect(out.result.tools).toEqual([tool('a')]);
  });

});

// ---------------------------------------------------------------------------------------------
// SSE

type Eol = '\n' | '\r\n' | '\r';
const EOLS: [string, Eol][] = [
  ['\\n\\n', '\n'],
  ['\\r\\n\\r\\n', '\r\n'],
  ['\\r\\r', '\r'],
];

/** One SSE event: field lines joined by `eol`, ended by a blank line. */
function sseEvent(lines: string[], eol: Eol): string {
  return lines.map((l) => l + eol).join('') + eol;
}

interface ParsedEvent {
  readonly fields: Record<string, string>;
  readonly data: string;
}

/** The client's view of a stream (WHATWG HTML "Interpreting an event stream", minus retry). */
function parseSse(text: string): ParsedEvent[] {
  const events: ParsedEvent[] = [];
  let fields: Record<string, string> = {};
  let data: string[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') {
      if (data.length > 0 || Object.keys(fields).length > 0) events.push({ fields, data: data.join('\n') });
      fields = {};
      data = [];
      continue;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else fields[field] = value;
  }
  return events;
}

async function runSse(filter: SseListFilter, chunks: readonly Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  for (const chunk of chunks) filter.write(chunk, out);
  filter.end(out);
  return Buffer.concat(out);
}

function splitAt(bytes: Buffer, at: number): Buffer[] {
  return [bytes.subarray(0, at), bytes.subarray(at)];
}

function byteByByte(bytes: Buffer): Buffer[] {
  return [...bytes].map((b) => Buffer.from([b]));
}

/** A stream whose tracked tools/list response (id 1) sits between unrelated events with multi-byte text. */
function sampleStream(eol: Eol) {
  const before = sseEvent(
    ['id: ev-1', 'event: message', 'data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"message":"héllo 😀 ✓"}}'],
    eol,
  );
  const tracked = sseEvent(
    [
      'id: ev-2',
      'event: message',
      'data: {"jsonrpc":"2.0","id":1,',
      'data: "result":{"tools":[{"name":"list_todos","description":"lïst 😀"},',
      `data: {"name":"${HIDDEN}","description":"hidden"},{"name":"add_todo"}]}}`,
    ],
    eol,
  );
  const after = sseEvent(['id: ev-3', 'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"later"}}'], eol);
  return { before, tracked, after, bytes: Buffer.from(before + tracked + after) };
}

function expectFilteredSample(output: Buffer, eol: Eol): void {
  const sample = sampleStream(eol);
  const text = output.toString('utf8');
  expect(text).not.toContain(HIDDEN);
  expect(output.subarray(0, Buffer.byteLength(sample.before)).equals(Buffer.from(sample.before))).toBe(true);
  expect(output.subarray(output.length - Buffer.byteLength(sample.after)).equals(Buffer.from(sample.after))).toBe(true);
  const events = parseSse(text);
  expect(events).toHaveLength(3);
  expect(events[1]!.fields).toEqual({ id: 'ev-2', event: 'message' });
  expect(JSON.parse(events[1]!.data)).toEqual({
    jsonrpc: '2.0',
    id: 1,
    result: { tools: [{ name: 'list_todos', description: 'lïst 😀' }, { name: 'add_todo' }] },
  });
}

describe('SseListFilter', () => {
  describe.each(EOLS)('with %s separators', (_label, eol) => {
    it('removes the hidden tool from one whole chunk', async () => {
      const output = await runSse(new SseListFilter(listFilter()), [sampleStream(eol).bytes]);
      expectFilteredSample(output, eol);
    });

    it('removes the hidden tool whatever byte boundary splits the stream in two', async () => {
      const { bytes } = sampleStream(eol);
      for (let at = 1; at < bytes.length; at++) {
        const output = await runSse(new SseListFilter(listFilter()), splitAt(bytes, at));
        expect(output.toString('utf8'), `split at byte ${at}`).not.toContain(HIDDEN);
        expectFilteredSample(output, eol);
      }
    });

    it('removes the hidden tool when fed one byte at a time', async () => {
      const output = await runSse(new SseListFilter(listFilter()), byteByByte(sampleStream(eol).bytes));
      expectFilteredSample(output, eol);
    });

    it('removes the hidden tool when the tracked response is the last event of the stream', async () => {
      const { before, tracked } = sampleStream(eol);
      const output = await runSse(new SseListFilter(listFilter()), [Buffer.from(before + tracked)]);
      expect(output.toString('utf8')).not.toContain(HIDDEN);
      expect(parseSse(output.toString('utf8'))).toHaveLength(2);
    });

    it('passes events without a tools list through byte-identical', async () => {
      const unrelated =
        sseEvent([': a comment', 'data: {"jsonrpc":"2.0","id":4,"result":{"content":[]}}'], eol) +
        sseEvent(['data: {"jsonrpc":"2.0","method":"notifications/message","params":{"tools":"é"}}'], eol);
      const { tracked } = sampleStream(eol);
      const input = Buffer.from(unrelated + tracked);
      for (let at = 1; at < Buffer.byteLength(unrelated); at += 7) {
        const output = await runSse(new SseListFilter(listFilter()), splitAt(input, at));
        expect(output.subarray(0, Buffer.byteLength(unrelated)).equals(Buffer.from(unrelated))).toBe(true);
      }
    });

    it('drops the data of an event that names tools but is not JSON', async () => {
      const input = Buffer.from(sseEvent(['id: 5', `data: {"tools": [{"name": "${HIDDEN}"`], eol));
      const output = await runSse(new SseListFilter(listFilter()), [input]);
      expect(output.toString()).not.toContain(HIDDEN);
      expect(output.toString()).toContain('id: 5');
    });
  });

  it('keeps filtering for the whole stream: a resumed GET stream may replay list answers', async () => {
    const { before, tracked } = sampleStream('\n');
    const later = [Buffer.from('data: {"jsonrpc":"2.0","id":9,"result":{"tools":[{"name":"secret_tool"}]}}\n\n'), Buffer.from(': ping\n\n')];
    const output = await runSse(new SseListFilter(listFilter()), [Buffer.from(before + tracked), ...later]);
    expect(output.toString()).not.toContain(HIDDEN);
    expect(output.subarray(output.length - later[1]!.length).equals(later[1]!)).toBe(true);
  });

  it('passes a multi-byte character split right after the tracked response through intact', async () => {
    const { tracked } = sampleStream('\n');
    const after = 'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"é"}}\n\n';
    const input = Buffer.from(tracked + after);
    const inside = input.indexOf(Buffer.from('é')) + 1; // between the two bytes of "é"
    const output = await runSse(new SseListFilter(listFilter()), splitAt(input, inside));
    expect(output.subarray(output.length - Buffer.byteLength(after)).toString('utf8')).toBe(after);
  });

  it('filters every list answer in one stream', async () => {
    const stream =
      `data: ${JSON.stringify(listResponse(1, ['a', HIDDEN]))}\n\n` +
      `data: ${JSON.stringify(listResponse(2, [HIDDEN, 'b']))}\n\n` +
      `data: ${JSON.stringify(listResponse(3, [HIDDEN]))}\n\n`;
    const output = await runSse(new SseListFilter(listFilter()), byteByByte(Buffer.from(stream)));
    const events = parseSse(output.toString()).map((e) => JSON.parse(e.data));
    expect(events.map(toolNames)).toEqual([['a'], ['b'], []]);
  });

  it('filters an unterminated last event too', async () => {
    const stream = `data: ${JSON.stringify(listResponse(1, ['a', HIDDEN]))}`;
    const output = await runSse(new SseListFilter(listFilter()), [Buffer.from(stream)]);
    expect(output.toString()).not.toContain(HIDDEN);
    expect(toolNames(JSON.parse(output.toString().slice('data: '.length)))).toEqual(['a']);
  });

  it('ends the stream with an error rather than pass on an event over the size cap', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    const chunks = Array.from({ length: 17 }, () => chunk);
    await expect(runSse(new SseListFilter(listFilter()), [Buffer.from('data: '), ...chunks])).rejects.toThrow(/larger than/);
  });

  it('splits a large event arriving in many chunks in linear time', async () => {
    const tools = Array.from({ length: 40_000 }, (_, i) => ({ name: i % 2 ? HIDDEN : `t${i}`, description: 'd'.repeat(50) }));
    const bytes = Buffer.from(`data: ${JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools } })}\n\n`);
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 1024) chunks.push(bytes.subarray(i, i + 1024));
    const started = performance.now();
    const output = await runSse(new SseListFilter(listFilter()), chunks);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(output.toString()).not.toContain(HIDDEN);
  });

  it('keeps an incomplete trailing event as it was', async () => {
    const stream = `data: ${JSON.stringify(listResponse(1, ['a']))}`;
    const output = await runSse(new SseListFilter(listFilter()), [Buffer.from(stream)]);
    expect(output.toString()).toBe(stream);
  });
});
