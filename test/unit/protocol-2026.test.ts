import { describe, expect, it } from 'vitest';
import { ListFilter } from '../../src/mcp/list-filter.js';
import { parseMcpBody } from '../../src/mcp/message.js';
import { checkMirroredHeaders, decodeHeaderValue } from '../../src/http/mirrored-headers.js';
import { ServerMessageFilter } from '../../src/mcp/server-message-filter.js';
import { SseListFilter } from '../../src/mcp/sse-filter.js';
import { decideRequest } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { CompiledPolicy } from '../../src/policy/types.js';
import { refusalOf } from '../support/refusals.js';

/** MCP 2026-07-28 on the wire: mirrored headers, the listen stream, filtered lists marked private. */
const V = '2026-07-28';
const meta = { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': {} };
const body = (message: unknown) => parseMcpBody(Buffer.from(JSON.stringify(message)), V);
const call = (name: string, extra: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: {}, _meta: meta, ...extra } });
const headers = (h: Record<string, string>) => ({ 'mcp-protocol-version': V, ...h });

describe('2026-07-28 mirrored headers', () => {
  it('decodes plain and =?base64?…?= values, and takes anything else literally unless the payload of a sentinel is invalid', () => {
    expect(decodeHeaderValue('tools/call')).toBe('tools/call');
    expect(decodeHeaderValue('=?base64?SGVsbG8sIOS4lueVjA==?=')).toBe('Hello, 世界');
    expect(decodeHeaderValue('=?BASE64?SGk=?=')).toBe('=?BASE64?SGk=?='); // markers are lower-case only: a literal
    expect(decodeHeaderValue('=?base64?SGk?=')).toBeUndefined(); // not canonical base64
    expect(decodeHeaderValue('=?base64?/w==?=')).toBeUndefined(); // not UTF-8
    expect(decodeHeaderValue('caf\u00e9')).toBeUndefined(); // non-ASCII must be encoded
    // Not wrapped whole in the sentinel: a literal value (the conformance suite's SEP-2243 check).
    expect(decodeHeaderValue('=?base64?not closed')).toBe('=?base64?not closed');
    expect(decodeHeaderValue('=?base64?SGVsbG8=')).toBe('=?base64?SGVsbG8=');
  });

  it('accepts headers that mirror the body', () => {
    expect(() => checkMirroredHeaders(headers({ 'mcp-method': 'tools/call', 'mcp-name': 'list_todos' }), V, body(call('list_todos')))).not.toThrow();
    const read = { jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri: 'todo://list', _meta: meta } };
    expect(() => checkMirroredHeaders(headers({ 'mcp-method': 'resources/read', 'mcp-name': 'todo://list' }), V, body(read))).not.toThrow();
    const unicode = call('añadir');
    expect(() => checkMirroredHeaders(headers({ 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from('añadir').toString('base64')}?=` }), V, body(unicode))).not.toThrow();
    const list = { jsonrpc: '2.0', id: 3, method: 'tools/list', params: { _meta: meta } };
    expect(() => checkMirroredHeaders(headers({ 'mcp-method': 'tools/list' }), V, body(list))).not.toThrow();
  });

  it('refuses a mismatch or a missing header with HeaderMismatch (400, -32020)', () => {
    const cases: [Record<string, string>, unknown][] = [
      [{ 'mcp-method': 'tools/call', 'mcp-name': 'secret_tool' }, call('list_todos')],
      [{ 'mcp-method': 'tools/list', 'mcp-name': 'list_todos' }, call('list_todos')],
      [{ 'mcp-name': 'list_todos' }, call('list_todos')],
      [{ 'mcp-method': 'tools/call' }, call('list_todos')],
      [{ 'mcp-method': 'tools/call', 'mcp-name': 'LIST_TODOS' }, call('list_todos')],
    ];
    for (const [h, message] of cases) {
      const refusal = refusalOf(() => checkMirroredHeaders(headers(h), V, body(message)));
      expect(refusal.code).toBe('header_mismatch');
      expect(refusal.shape).toMatchObject({ status: 400, rpcCode: -32020 });
    }
  });

  it("refuses a _meta version other than the header's, and a missing one", () => {
    const other = call('list_todos', { _meta: { ...meta, 'io.modelcontextprotocol/protocolVersion': '2025-11-25' } });
    expect(refusalOf(() => checkMirroredHeaders(headers({ 'mcp-method': 'tools/call', 'mcp-name': 'list_todos' }), V, body(other))).code).toBe('header_mismatch');
    const none = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_todos' } };
    expect(refusalOf(() => checkMirroredHeaders(headers({ 'mcp-method': 'tools/call', 'mcp-name': 'list_todos' }), V, body(none))).shape).toMatchObject({ status: 400, rpcCode: -32602 });
  });

  it('refuses a 2026-07-28 body sent under an older version header, which would skip these checks', () => {
    const parsed = parseMcpBody(Buffer.from(JSON.stringify(call('list_todos'))), '2025-11-25');
    expect(refusalOf(() => checkMirroredHeaders({ 'mcp-protocol-version': '2025-11-25' }, '2025-11-25', parsed)).code).toBe('header_mismatch');
  });

  it('refuses JSON-RPC responses from the client in 2026-07-28', () => {
    expect(refusalOf(() => body({ jsonrpc: '2.0', id: 1, result: {} })).code).toBe('invalid_message');
  });
});

function policy(text: string): CompiledPolicy {
  const result = parsePolicy('p.yaml', text);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.policy;
}

describe('subscriptions/listen decisions', () => {
  const p = policy(`scopes: [r]\ntools: { "*": [r] }\nresources:\n  "todo://*": [r]\n  "secret://*": [admin]\n  "hidden://*": deny\n`);
  const listen = (uris: string[]) => body({ jsonrpc: '2.0', id: 9, method: 'subscriptions/listen', params: { _meta: meta, notifications: { toolsListChanged: true, resourceSubscriptions: uris } } }).messages[0]!;
  const decide = (uris: string[], scopes: string[]) => {
    const message = listen(uris);
    if (message.kind === 'response') throw new Error('not a request');
    return decideRequest(p, new Set(scopes), message.policy);
  };

  it('decides each subscribed resource like a read', () => {
    expect(decide([], ['r'])).toMatchObject({ effect: 'allow', reason: 'method-allowed' });
    expect(decide(['todo://list'], ['r'])).toMatchObject({ effect: 'allow' });
    expect(decide(['todo://list', 'secret://notes'], ['r'])).toMatchObject({ effect: 'step-up', missing: ['admin'] });
    expect(decide(['secret://notes', 'hidden://x'], ['r', 'admin'])).toMatchObject({ effect: 'deny', reason: 'resource-denied' });
    expect(decide(['elsewhere://x'], ['r'])).toMatchObject({ effect: 'deny', reason: 'resource-unmatched' });
  });

  it('refuses a malformed resourceSubscriptions', () => {
    const bad = { jsonrpc: '2.0', id: 9, method: 'subscriptions/listen', params: { _meta: meta, notifications: { resourceSubscriptions: 'todo://list' } } };
    expect(refusalOf(() => body(bad)).code).toBe('invalid_message');
  });
});

describe('server message filter', () => {
  const lists = new ListFilter({ tool: (name) => name !== 'secret_tool' });
  const visible = (uri: string) => uri.startsWith('todo://');
  const listResult = { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'list_todos' }, { name: 'secret_tool' }], ttlMs: 60000, cacheScope: 'public' } };

  it('marks a list it shortened cacheScope "private" (2026-07-28), and leaves an untouched one alone', () => {
    const filter = new ServerMessageFilter(lists, { markPrivate: true });
    const out = JSON.parse(filter.filterJsonBody(Buffer.from(JSON.stringify(listResult)))!.toString());
    expect(out.result).toEqual({ tools: [{ name: 'list_todos' }], ttlMs: 60000, cacheScope: 'private' });
    const whole = { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'list_todos' }], cacheScope: 'public' } };
    const bytes = Buffer.from(JSON.stringify(whole));
    expect(filter.filterJsonBody(bytes)).toBe(bytes);
    // Older versions have no cacheScope: nothing is added.
    const legacy = JSON.parse(new ServerMessageFilter(lists, { markPrivate: false }).filterJsonBody(Buffer.from(JSON.stringify(listResult)))!.toString());
    expect(legacy.result.cacheScope).toBe('public');
  });

  it('drops updates about resources the principal may not read, at every byte split of the stream', async () => {
    const events = [
      { jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: { toolsListChanged: true } } },
      { jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'secret://admin-notes', _meta: { 'io.modelcontextprotocol/subscriptionId': 9 } } },
      { jsonrpc: '2.0', method: 'notifications/tools/list_changed', params: { _meta: { 'io.modelcontextprotocol/subscriptionId': 9 } } },
      { jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'todo://list/7', _meta: { 'io.modelcontextprotocol/subscriptionId': 9 } } },
    ];
    const stream = Buffer.from(events.map((e) => `event: message\ndata: ${JSON.stringify(e)}\n\n`).join(''));
    const expected = [events[0], events[2], events[3]].map((e) => `event: message\ndata: ${JSON.stringify(e)}\n\n`).join('');
    for (let split = 0; split <= stream.length; split++) {
      const filter = new SseListFilter(new ServerMessageFilter(undefined, { markPrivate: true, resourceUpdateVisible: visible }));
      const out: Buffer[] = [];
      filter.write(stream.subarray(0, split), out);
      filter.write(stream.subarray(split), out);
      filter.end(out);
      expect(Buffer.concat(out).toString()).toBe(expected);
    }
  });
});

describe('review fixes: what a byte search or a header could slip past', () => {
  const visible = (uri: string) => uri.startsWith('todo://');
  const run = async (filter: SseListFilter, stream: string) => {
    const out: Buffer[] = [];
    filter.write(Buffer.from(stream), out);
    filter.end(out);
    return Buffer.concat(out).toString();
  };

  it('drops a notification whose method is spelled with JSON escapes, or behind a byte-order mark', async () => {
    const escaped = 'data: {"jsonrpc":"2.0","method":"notifications\\/resources\\/updated","params":{"uri":"secret://x"}}\n\n';
    const unicode = 'data: {"jsonrpc":"2.0","method":"notifications/resources/upd\\u0061ted","params":{"uri":"secret://x"}}\n\n';
    const kept = 'data: {"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"todo://list"}}\n\n';
    const filter = () => new SseListFilter(new ServerMessageFilter(undefined, { markPrivate: false, resourceUpdateVisible: visible }));
    expect(await run(filter(), escaped + unicode + kept)).toBe(kept);
    const bom = '\uFEFFdata: {"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"secret://x"}}\n\n';
    expect(await run(filter(), bom + kept)).toBe(kept);
  });

  it('filters a list whose member name is spelled with escapes', () => {
    const lists = new ListFilter({ tool: (name) => name !== 'secret_tool' });
    const body = Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"\\u0074ools":[{"name":"list_todos"},{"name":"secret_tool"}]}}');
    expect(JSON.parse(lists.filterJsonBody(body)!.toString()).result.tools).toEqual([{ name: 'list_todos' }]);
  });

  it('refuses an Mcp-Param-* header whose value is not an argument of the call', () => {
    const withRepo = call('open_pr', { arguments: { repo: 'acme/x', draft: true } });
    const ok = headers({ 'mcp-method': 'tools/call', 'mcp-name': 'open_pr', 'mcp-param-repo': 'acme/x', 'mcp-param-draft': 'true' });
    expect(() => checkMirroredHeaders(ok, V, body(withRepo))).not.toThrow();
    const lying = headers({ 'mcp-method': 'tools/call', 'mcp-name': 'open_pr', 'mcp-param-repo': 'evil/y' });
    expect(refusalOf(() => checkMirroredHeaders(lying, V, body(withRepo))).code).toBe('header_mismatch');
  });

  it('refuses an older batch with an element naming 2026-07-28 in its _meta', () => {
    const batch = parseMcpBody(Buffer.from(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }, call('list_todos')])), '2025-03-26');
    expect(refusalOf(() => checkMirroredHeaders({ 'mcp-protocol-version': '2025-03-26' }, '2025-03-26', batch)).code).toBe('header_mismatch');
  });
});
