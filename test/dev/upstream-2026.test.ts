/**
 * Exercises dev/upstream-2026.ts directly (no gateway, no auth) with raw fetch in the MCP
 * 2026-07-28 shape, so gateway tests can trust both the upstream and the wire shapes recorded
 * here. The server side is the official SDK v2 (@modelcontextprotocol/server 2.4.0 createMcpHandler
 * behind @modelcontextprotocol/node's toNodeHandler); every shape asserted below is what that SDK
 * actually puts on the wire.
 *
 * 2026-07-28 request shape used throughout:
 *   POST /mcp
 *   Content-Type: application/json
 *   Accept: application/json, text/event-stream
 *   MCP-Protocol-Version: 2026-07-28
 *   Mcp-Method: <method>
 *   Mcp-Name: <params.name | params.uri>   (tools/call, resources/read, prompts/get only)
 *   {"jsonrpc":"2.0","id":N,"method":M,"params":{...,"_meta":{
 *     "io.modelcontextprotocol/protocolVersion":"2026-07-28",
 *     "io.modelcontextprotocol/clientCapabilities":{...}}}}
 *
 * Every 2026 result carries "resultType" ("complete" | "input_required") and
 * _meta["io.modelcontextprotocol/serverInfo"] = {"name":"sample-todo-upstream-2026","version":"1.0.0"}.
 * No response ever carries Mcp-Session-Id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  CONFIRM_INPUT_KEY,
  MODERN_PROTOCOL_VERSION,
  MODERN_SECRET_RESOURCE_URI,
  MODERN_TOOL_NAMES,
  startModernUpstream,
  type ModernUpstream,
} from '../../dev/upstream-2026.js';

const V = MODERN_PROTOCOL_VERSION;
const PROTOCOL_VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';
const CLIENT_CAPABILITIES_KEY = 'io.modelcontextprotocol/clientCapabilities';
const SUBSCRIPTION_ID_KEY = 'io.modelcontextprotocol/subscriptionId';
const SERVER_INFO = { name: 'sample-todo-upstream-2026', version: '1.0.0' };
const SERVER_INFO_META = { 'io.modelcontextprotocol/serverInfo': SERVER_INFO };

type Json = Record<string, unknown>;

interface RpcOptions {
  /** Mcp-Name header; omitted when undefined. */
  name?: string;
  clientCapabilities?: Json;
  headers?: Record<string, string>;
  id?: string | number;
  signal?: AbortSignal;
}

let nextId = 1;

/** RFC 2047-style sentinel the 2026 transport uses for non-ASCII header values. */
function base64Sentinel(value: string): string {
  return `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

function post(url: string, method: string, params: Json = {}, opts: RpcOptions = {}): Promise<Response> {
  const id = opts.id ?? nextId++;
  const body = {
    jsonrpc: '2.0',
    id,
    method,
    params: {
      ...params,
      _meta: { [PROTOCOL_VERSION_KEY]: V, [CLIENT_CAPABILITIES_KEY]: opts.clientCapabilities ?? {} },
    },
  };
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': V,
      'mcp-method': method,
      ...(opts.name !== undefined ? { 'mcp-name': opts.name } : {}),
      ...opts.headers,
    },
    body: JSON.stringify(body),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

async function rpc(url: string, method: string, params: Json = {}, opts: RpcOptions = {}): Promise<{ status: number; headers: Headers; body: Json }> {
  const res = await post(url, method, params, opts);
  return { status: res.status, headers: res.headers, body: (await res.json()) as Json };
}

function callTool(url: string, name: string, args: Json = {}, opts: RpcOptions = {}, extraParams: Json = {}) {
  return rpc(url, 'tools/call', { name, arguments: args, ...extraParams }, { name, ...opts });
}

function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

/** Minimal SSE reader: yields the parsed `data:` JSON of each event, ignoring comment frames. */
class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private readonly queue: unknown[] = [];
  private pending: Promise<{ done: boolean; value?: Uint8Array }> | undefined;
  /** Raw text of every event frame received, for shape assertions. */
  readonly frames: string[] = [];
  ended = false;

  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
  }

  /** Next event's data, or undefined if none arrives within timeoutMs (or the stream ended). */
  async next(timeoutMs = 2_000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0 && !this.ended) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return undefined;
      this.pending ??= this.reader.read();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), remaining);
      });
      const chunk = await Promise.race([this.pending, timeout]).finally(() => clearTimeout(timer));
      if (chunk === 'timeout') return undefined;
      this.pending = undefined;
      if (chunk.done) {
        this.ended = true;
        break;
      }
      this.buffer += this.decoder.decode(chunk.value, { stream: true });
      let split: number;
      while ((split = this.buffer.indexOf('\n\n')) !== -1) {
        const frame = this.buffer.slice(0, split);
        this.buffer = this.buffer.slice(split + 2);
        const data = frame
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (data === '') continue; // ": keepalive" comment frames
        this.frames.push(frame);
        this.queue.push(JSON.parse(data));
      }
    }
    return this.queue.shift();
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => undefined);
  }
}

function openListen(url: string, id: string, notifications: Json, signal: AbortSignal): Promise<Response> {
  return post(url, 'subscriptions/listen', { notifications }, { id, signal });
}

describe('dev/upstream-2026 (MCP 2026-07-28 via @modelcontextprotocol/server v2)', () => {
  let upstream: ModernUpstream;

  beforeAll(async () => {
    upstream = await startModernUpstream();
  });

  afterAll(async () => {
    await upstream?.close();
  });

  it('serves on 127.0.0.1 under /mcp', () => {
    expect(upstream.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  });

  it('answers server/discover (no initialize, no session)', async () => {
    const { status, headers, body } = await rpc(upstream.url, 'server/discover');
    expect(status).toBe(200);
    expect(headers.get('content-type')).toContain('application/json');
    expect(headers.get('mcp-session-id')).toBeNull();
    // Observed wire shape:
    // {"result":{"supportedVersions":["2026-07-28"],
    //   "capabilities":{"resources":{"subscribe":true,"listChanged":true},"tools":{"listChanged":true},"prompts":{"listChanged":true}},
    //   "resultType":"complete","ttlMs":0,"cacheScope":"private",
    //   "_meta":{"io.modelcontextprotocol/serverInfo":{"name":"sample-todo-upstream-2026","version":"1.0.0"}}},
    //  "jsonrpc":"2.0","id":1}
    // supportedVersions lists only modern revisions (2025 ones are negotiated via initialize).
    expect(body).toEqual({
      jsonrpc: '2.0',
      id: expect.any(Number),
      result: {
        supportedVersions: ['2026-07-28'],
        capabilities: {
          resources: { subscribe: true, listChanged: true },
          tools: { listChanged: true },
          prompts: { listChanged: true },
        },
        resultType: 'complete',
        ttlMs: 0,
        cacheScope: 'private',
        _meta: SERVER_INFO_META,
      },
    });
  });

  it('lists the tools with ttlMs/cacheScope on the result', async () => {
    const { status, body } = await rpc(upstream.url, 'tools/list');
    expect(status).toBe(200);
    const result = body.result as { tools: Array<{ name: string }>; resultType: string; ttlMs: number; cacheScope: string; _meta: Json };
    expect(result.tools.map((t) => t.name)).toEqual([...MODERN_TOOL_NAMES]);
    // ttlMs/cacheScope are REQUIRED on 2026 list results; the SDK fills them from the
    // McpServer `cacheHints` option (tools/list: 60000/public here) or defaults to 0/private
    // (see server/discover above and resources/prompts lists).
    expect(result).toMatchObject({ resultType: 'complete', ttlMs: 60_000, cacheScope: 'public', _meta: SERVER_INFO_META });

    const prompts = await rpc(upstream.url, 'prompts/list');
    expect(prompts.body.result).toMatchObject({
      prompts: [{ name: 'summarize_todos' }, { name: 'internal_triage' }],
      ttlMs: 0,
      cacheScope: 'private',
    });
    const resources = await rpc(upstream.url, 'resources/list');
    expect(resources.body.result).toMatchObject({
      resources: [{ uri: 'todo://list' }, { uri: 'secret://admin-notes' }],
      ttlMs: 0,
      cacheScope: 'private',
    });
  });

  it('calls tools, reads resources and gets prompts', async () => {
    const added = await callTool(upstream.url, 'add_todo', { title: 'buy milk' });
    expect(added.status).toBe(200);
    // {"result":{"content":[{"type":"text","text":"added buy milk"}],"resultType":"complete","_meta":{serverInfo}},"jsonrpc":"2.0","id":N}
    // (tools/call results are not cacheable: no ttlMs/cacheScope.)
    expect(added.body).toEqual({
      jsonrpc: '2.0',
      id: expect.any(Number),
      result: { content: [{ type: 'text', text: 'added buy milk' }], resultType: 'complete', _meta: SERVER_INFO_META },
    });

    const listed = await callTool(upstream.url, 'list_todos');
    expect(textOf(listed.body.result)).toBe('todos: Try the MCP auth gateway, buy milk');
    expect(textOf((await callTool(upstream.url, 'secret_tool')).body.result)).toBe('the secret is 42');

    const read = await rpc(upstream.url, 'resources/read', { uri: MODERN_SECRET_RESOURCE_URI }, { name: MODERN_SECRET_RESOURCE_URI });
    expect(read.body.result).toMatchObject({
      contents: [{ uri: MODERN_SECRET_RESOURCE_URI, text: 'the admin password is hunter2' }],
      resultType: 'complete',
      ttlMs: 0,
      cacheScope: 'private',
    });

    const prompt = await rpc(upstream.url, 'prompts/get', { name: 'internal_triage' }, { name: 'internal_triage' });
    expect(prompt.body.result).toMatchObject({ messages: [{ role: 'user', content: { type: 'text', text: 'internal: triage by severity' } }] });
  });

  it('whoami echoes the x-mcp-subject header', async () => {
    const alice = await callTool(upstream.url, 'whoami', {}, { headers: { 'x-mcp-subject': 'alice', 'x-mcp-scopes': 'todo:read' } });
    expect(alice.body.result).toMatchObject({
      content: [{ type: 'text', text: 'alice' }],
      structuredContent: { subject: 'alice', headers: { 'x-mcp-subject': 'alice', 'x-mcp-scopes': 'todo:read' } },
    });
    const nobody = await callTool(upstream.url, 'whoami');
    expect(nobody.body.result).toMatchObject({ content: [{ type: 'text', text: 'anonymous' }], structuredContent: { subject: null, headers: {} } });
  });

  it('refuses a mismatched Mcp-Name header itself with 400 / -32020 (HeaderMismatch)', async () => {
    upstream.clearLog();
    const mismatch = await rpc(upstream.url, 'tools/call', { name: 'list_todos', arguments: {} }, { name: 'secret_tool', id: 'mismatch-1' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.headers.get('content-type')).toContain('application/json');
    // Exact body returned by the SDK (validateStandardRequestHeaders, cell "name-header-mismatch"):
    expect(mismatch.body).toEqual({
      jsonrpc: '2.0',
      error: {
        code: -32020,
        message: 'Bad Request: the request headers and body disagree: the body carries params.name="list_todos" but the Mcp-Name header names "secret_tool"',
        data: {
          mismatch: {
            header: 'secret_tool',
            body: 'the body carries params.name="list_todos" but the Mcp-Name header names "secret_tool"',
          },
        },
      },
      id: 'mismatch-1',
    });

    // Missing Mcp-Name on tools/call: same code, header "(missing)".
    const missing = await rpc(upstream.url, 'tools/call', { name: 'list_todos', arguments: {} }, { id: 'mismatch-2' });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({
      jsonrpc: '2.0',
      error: {
        code: -32020,
        message: 'Bad Request: the request headers and body disagree: the body carries params.name="list_todos" but the required Mcp-Name header is absent',
        data: { mismatch: { header: '(missing)', body: 'the body carries params.name="list_todos" but the required Mcp-Name header is absent' } },
      },
      id: 'mismatch-2',
    });

    // resources/read cross-checks params.uri the same way.
    const uri = await rpc(upstream.url, 'resources/read', { uri: MODERN_SECRET_RESOURCE_URI }, { name: 'todo://list' });
    expect(uri.status).toBe(400);
    expect(uri.body.error).toMatchObject({ code: -32020, data: { mismatch: { header: 'todo://list' } } });

    // Mcp-Method disagreeing with the body method.
    const method = await rpc(upstream.url, 'tools/call', { name: 'list_todos', arguments: {} }, { name: 'list_todos', headers: { 'mcp-method': 'tools/list' } });
    expect(method.status).toBe(400);
    expect(method.body.error).toMatchObject({
      code: -32020,
      message: 'Bad Request: the request headers and body disagree: the body names method tools/call but the Mcp-Method header names tools/list',
    });

    // The requests still reached (and were logged by) the upstream; the SDK reported each rejection.
    expect(upstream.requests).toHaveLength(4);
    expect(upstream.requests[0]).toMatchObject({
      method: 'POST',
      path: '/mcp',
      headers: { 'mcp-name': 'secret_tool', 'mcp-method': 'tools/call', 'mcp-protocol-version': V },
      body: { method: 'tools/call', params: { name: 'list_todos' } },
    });
    expect(upstream.errors.map((e) => e.message)).toEqual([
      expect.stringContaining('(name-header-mismatch)'),
      expect.stringContaining('(name-header-missing)'),
      expect.stringContaining('(name-header-mismatch)'),
      expect.stringContaining('Mcp-Method header names tools/list'),
    ]);
  });

  it('decodes a =?base64?…?= Mcp-Name sentinel for non-ASCII names', async () => {
    // Matching sentinel: passes the header gate and reaches dispatch (unknown tool => -32602, HTTP 200).
    const ok = await rpc(upstream.url, 'tools/call', { name: 'tödo', arguments: {} }, { name: base64Sentinel('tödo') });
    expect(ok.status).toBe(200);
    expect(ok.body.error).toEqual({ code: -32602, message: 'Tool tödo not found' });
    // Sentinel decoding to another name: 400 -32020, `header` echoes the raw sentinel.
    const bad = await rpc(upstream.url, 'tools/call', { name: 'tödo', arguments: {} }, { name: base64Sentinel('tüdo') });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({
      code: -32020,
      message: 'Bad Request: the request headers and body disagree: the body carries params.name="tödo" but the Mcp-Name header names "tüdo"',
      data: { mismatch: { header: base64Sentinel('tüdo') } },
    });
  });

  it('rejects a request naming an unsupported revision', async () => {
    const res = await fetch(upstream.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2027-01-01', 'mcp-method': 'tools/list' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: { [PROTOCOL_VERSION_KEY]: '2027-01-01', [CLIENT_CAPABILITIES_KEY]: {} } } }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      jsonrpc: '2.0',
      error: { code: -32022, message: 'Unsupported protocol version: 2027-01-01', data: { supported: ['2026-07-28'], requested: '2027-01-01' } },
      id: 7,
    });
  });

  it('runs the confirm_delete multi round-trip (input_required, then retry with inputResponses + requestState)', async () => {
    await callTool(upstream.url, 'add_todo', { title: 'doomed' });
    const caps = { elicitation: { form: {} } };

    const first = await callTool(upstream.url, 'confirm_delete', { title: 'doomed' }, { clientCapabilities: caps, id: 'del-1' });
    expect(first.status).toBe(200);
    // Observed wire shape (HTTP 200, JSON):
    // {"result":{"resultType":"input_required",
    //   "inputRequests":{"confirm":{"method":"elicitation/create","params":{"message":"Delete \"doomed\"?",
    //     "requestedSchema":{"type":"object","properties":{"confirm":{"type":"boolean","description":"Really delete?"}},
    //       "required":["confirm"],"$schema":"https://json-schema.org/draft/2020-12/schema"},"mode":"form"}}},
    //   "requestState":"v1.<b64url payload>.<b64url HMAC>",
    //   "_meta":{"io.modelcontextprotocol/serverInfo":{...}}},"jsonrpc":"2.0","id":"del-1"}
    // requestState is the SDK's createRequestStateCodec wire form (signed, not encrypted:
    // {"p":<payload>,"exp":<unix s>,"b":<bind tag>}).
    expect(first.body).toEqual({
      jsonrpc: '2.0',
      id: 'del-1',
      result: {
        resultType: 'input_required',
        inputRequests: {
          [CONFIRM_INPUT_KEY]: {
            method: 'elicitation/create',
            params: {
              message: 'Delete "doomed"?',
              requestedSchema: {
                type: 'object',
                properties: { confirm: { type: 'boolean', description: 'Really delete?' } },
                required: ['confirm'],
                $schema: 'https://json-schema.org/draft/2020-12/schema',
              },
              mode: 'form',
            },
          },
        },
        requestState: expect.stringMatching(/^v1\.[\w-]+\.[\w-]+$/),
        _meta: SERVER_INFO_META,
      },
    });
    const { requestState } = first.body.result as { requestState: string };
    const payload = JSON.parse(Buffer.from(requestState.split('.')[1]!, 'base64url').toString('utf8')) as Json;
    expect(payload).toMatchObject({ p: { tool: 'confirm_delete', title: 'doomed' }, exp: expect.any(Number), b: expect.any(String) });

    // Retry: same method/name, NEW id, params.inputResponses keyed like inputRequests + the echoed requestState.
    const inputResponses = { [CONFIRM_INPUT_KEY]: { action: 'accept', content: { confirm: true } } };
    const retry = await callTool(upstream.url, 'confirm_delete', { title: 'doomed' }, { clientCapabilities: caps, id: 'del-2' }, { inputResponses, requestState });
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual({
      jsonrpc: '2.0',
      id: 'del-2',
      result: { content: [{ type: 'text', text: 'deleted' }], resultType: 'complete', _meta: SERVER_INFO_META },
    });
    expect(textOf((await callTool(upstream.url, 'list_todos')).body.result)).not.toContain('doomed');

    // Declining completes without deleting.
    const declined = await callTool(upstream.url, 'confirm_delete', {}, { clientCapabilities: caps }, {
      inputResponses: { [CONFIRM_INPUT_KEY]: { action: 'decline' } },
      requestState,
    });
    expect(declined.body.result).toMatchObject({ content: [{ type: 'text', text: 'not deleted' }], isError: true, resultType: 'complete' });

    // A tampered requestState is refused by the SDK (requestState.verify hook) before the handler runs.
    const tampered = await callTool(upstream.url, 'confirm_delete', {}, { clientCapabilities: caps, id: 'del-3' }, { inputResponses, requestState: `${requestState}x` });
    expect(tampered.status).toBe(200);
    expect(tampered.body).toEqual({
      jsonrpc: '2.0',
      id: 'del-3',
      error: { code: -32602, message: 'Invalid or expired requestState', data: { reason: 'invalid_request_state' } },
    });

    // Without the elicitation capability in the request's _meta the SDK will not emit the input request.
    const noCaps = await callTool(upstream.url, 'confirm_delete', {}, { id: 'del-4' });
    expect(noCaps.status).toBe(400);
    expect(noCaps.body).toEqual({
      jsonrpc: '2.0',
      id: 'del-4',
      error: {
        code: -32021,
        message: "Cannot request input 'confirm' (elicitation/create): the request's client capabilities do not declare the required capability",
        data: { requiredCapabilities: { elicitation: { form: {} } } },
      },
    });
  });

  it('streams notifications on a subscriptions/listen stream', async () => {
    const abort = new AbortController();
    const res = await openListen(
      upstream.url,
      'listen-1',
      { toolsListChanged: true, promptsListChanged: false, resourceSubscriptions: [MODERN_SECRET_RESOURCE_URI] },
      abort.signal,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(res.headers.get('mcp-session-id')).toBeNull();
    const sse = new SseReader(res.body!);
    try {
      // First event (frame `event: message\ndata: {...}`), the honoured subset of the filter
      // (false/absent fields dropped), stamped with the listen request's id verbatim:
      // {"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged",
      //  "params":{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["secret://admin-notes"]},
      //            "_meta":{"io.modelcontextprotocol/subscriptionId":"listen-1"}}}
      expect(await sse.next()).toEqual({
        jsonrpc: '2.0',
        method: 'notifications/subscriptions/acknowledged',
        params: {
          notifications: { toolsListChanged: true, resourceSubscriptions: [MODERN_SECRET_RESOURCE_URI] },
          _meta: { [SUBSCRIPTION_ID_KEY]: 'listen-1' },
        },
      });
      expect(sse.frames[0]).toMatch(/^event: message\ndata: \{/);

      // Not subscribed to todo://list nor to prompts: these are filtered out by the SDK.
      upstream.notifyResourceUpdated('todo://list');
      upstream.notifyPromptsChanged();

      upstream.notifyToolsChanged();
      // {"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":"listen-1"}}}
      expect(await sse.next()).toEqual({
        jsonrpc: '2.0',
        method: 'notifications/tools/list_changed',
        params: { _meta: { [SUBSCRIPTION_ID_KEY]: 'listen-1' } },
      });

      upstream.notifyResourceUpdated(MODERN_SECRET_RESOURCE_URI);
      // {"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"secret://admin-notes","_meta":{"io.modelcontextprotocol/subscriptionId":"listen-1"}}}
      expect(await sse.next()).toEqual({
        jsonrpc: '2.0',
        method: 'notifications/resources/updated',
        params: { uri: MODERN_SECRET_RESOURCE_URI, _meta: { [SUBSCRIPTION_ID_KEY]: 'listen-1' } },
      });
      expect(await sse.next(200)).toBeUndefined();
    } finally {
      await sse.cancel();
      abort.abort();
    }
  });

  it('answers a listen with nothing honoured by ack + immediate graceful close, and one without a filter with -32602', async () => {
    const res = await openListen(upstream.url, 'listen-empty', {}, new AbortController().signal);
    const sse = new SseReader(res.body!);
    expect(await sse.next()).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: { notifications: {}, _meta: { [SUBSCRIPTION_ID_KEY]: 'listen-empty' } },
    });
    // Graceful close = the JSON-RPC result of the listen request itself.
    expect(await sse.next()).toEqual({
      jsonrpc: '2.0',
      id: 'listen-empty',
      result: { resultType: 'complete', _meta: { [SUBSCRIPTION_ID_KEY]: 'listen-empty', ...SERVER_INFO_META } },
    });
    expect(await sse.next()).toBeUndefined();
    expect(sse.ended).toBe(true);

    const noFilter = await rpc(upstream.url, 'subscriptions/listen', {}, { id: 'listen-bad' });
    expect(noFilter.status).toBe(200);
    expect(noFilter.body).toEqual({
      jsonrpc: '2.0',
      error: { code: -32602, message: "Invalid params: 'notifications' is required and must be a valid SubscriptionFilter" },
      id: 'listen-bad',
    });
  });

  it('records every request before the SDK sees it, with no session header anywhere', async () => {
    upstream.clearLog();
    await callTool(upstream.url, 'list_todos', {}, { id: 'log-1' });
    // Not JSON => no envelope => routed to the SDK's legacy (2025) leg, which answers the parse error.
    const garbage = await fetch(upstream.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{nope',
    });
    expect(garbage.status).toBe(400);
    expect(await garbage.json()).toEqual({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error: Invalid JSON' }, id: null });

    expect(upstream.requests).toHaveLength(2);
    expect(upstream.requests[0]).toMatchObject({
      method: 'POST',
      path: '/mcp',
      headers: { 'mcp-protocol-version': V, 'mcp-method': 'tools/call', 'mcp-name': 'list_todos' },
      body: {
        jsonrpc: '2.0',
        id: 'log-1',
        method: 'tools/call',
        params: { name: 'list_todos', _meta: { [PROTOCOL_VERSION_KEY]: V, [CLIENT_CAPABILITIES_KEY]: {} } },
      },
    });
    expect(upstream.requests[1]?.body).toBe('{nope');
    expect(upstream.requests.every((r) => r.headers['mcp-session-id'] === undefined)).toBe(true);
  });
});

describe('dev/upstream-2026 legacy era on the same endpoint', () => {
  let upstream: ModernUpstream;

  beforeAll(async () => {
    upstream = await startModernUpstream();
  });

  afterAll(async () => {
    await upstream?.close();
  });

  it('serves 2025-11-25 clients (v1 SDK) through the SDK stateless legacy fallback', async () => {
    const client = new Client({ name: 'legacy-client', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(upstream.url));
    await client.connect(transport);
    try {
      expect(transport.protocolVersion).toBe('2025-11-25');
      expect(transport.sessionId).toBeUndefined();
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual([...MODERN_TOOL_NAMES]);
      expect(textOf(await client.callTool({ name: 'add_todo', arguments: { title: 'legacy' } }))).toBe('added legacy');
      expect(textOf(await client.callTool({ name: 'list_todos', arguments: {} }))).toContain('legacy');
      // 2025 results carry none of the 2026 fields.
      const listed = await fetch(upstream.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
      });
      expect(listed.headers.get('content-type')).toBe('text/event-stream');
      const event = await new SseReader(listed.body!).next();
      expect(event).toMatchObject({ id: 1, result: { tools: expect.any(Array) } });
      expect((event as { result: Json }).result).not.toHaveProperty('resultType');
      expect((event as { result: Json }).result).not.toHaveProperty('ttlMs');
    } finally {
      await client.close();
    }
    // initialize + notifications/initialized, the client's standalone GET (answered 405), then calls.
    const get = upstream.requests.find((r) => r.method === 'GET');
    expect(get).toMatchObject({ method: 'GET', path: new URL(upstream.url).pathname });
  });

  it("rejects 2025 traffic with -32022 when started with legacy: 'reject'", async () => {
    const strict = await startModernUpstream({ legacy: 'reject' });
    try {
      const res = await fetch(strict.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
        }),
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        jsonrpc: '2.0',
        error: { code: -32022, message: 'Unsupported protocol version: 2025-11-25', data: { supported: ['2026-07-28'], requested: '2025-11-25' } },
        id: 1,
      });
    } finally {
      await strict.close();
    }
  });
});

describe('dev/upstream-2026 close()', () => {
  it('ends open listen streams with the graceful final result', async () => {
    const upstream = await startModernUpstream();
    const res = await openListen(upstream.url, 'listen-close', { toolsListChanged: true }, new AbortController().signal);
    const sse = new SseReader(res.body!);
    expect(await sse.next()).toMatchObject({ method: 'notifications/subscriptions/acknowledged' });
    await upstream.close();
    // {"jsonrpc":"2.0","id":"listen-close","result":{"resultType":"complete","_meta":{
    //   "io.modelcontextprotocol/subscriptionId":"listen-close","io.modelcontextprotocol/serverInfo":{...}}}}
    expect(await sse.next()).toEqual({
      jsonrpc: '2.0',
      id: 'listen-close',
      result: { resultType: 'complete', _meta: { [SUBSCRIPTION_ID_KEY]: 'listen-close', ...SERVER_INFO_META } },
    });
    expect(await sse.next()).toBeUndefined();
    expect(sse.ended).toBe(true);
  });
});
