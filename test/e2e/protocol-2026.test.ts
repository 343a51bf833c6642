import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { startModernUpstream, type ModernUpstream } from '../../dev/upstream-2026.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * MCP 2026-07-28 through the gateway, in the revision's own shape (raw HTTP: the 1.x SDK client
 * does not speak it), against a real 2026-07-28 upstream (the official SDK v2 server, see
 * dev/upstream-2026.ts) and real tokens from the real IdP. The 2025 world keeps its own
 * end-to-end tests (sdk-flow, http-contract) on the same gateway code.
 */
const V = '2026-07-28';
const POLICY = `scopes: [todo:read]
tools:
  list_todos: [todo:read]
  add_todo: [todo:write]
  whoami: [todo:read]
  confirm_delete: [todo:write]
  secret_tool: deny
resources:
  "todo://*": [todo:read]
  "secret://*": [todo:admin]
methods:
  tools/list: [todo:write]
`;

type Json = Record<string, unknown>;
let nextId = 1;

function post(url: string, token: string, method: string, params: Json = {}, headers: Record<string, string> = {}, id: string | number = nextId++): Promise<Response> {
  const name = typeof params.name === 'string' ? params.name : typeof params.uri === 'string' && method === 'resources/read' ? params.uri : undefined;
  return fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': V,
      'mcp-method': method,
      ...(name !== undefined ? { 'mcp-name': name } : {}),
      ...headers,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method,
      params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } } },
    }),
  });
}

/** Collects the JSON messages of an SSE response as they arrive. */
function collectEvents(response: Response): { messages: Json[]; until(found: (m: Json) => boolean, ms?: number): Promise<void>; cancel(): Promise<void> } {
  const messages: Json[] = [];
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const pump = (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const data = buffer.slice(0, end).split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
        buffer = buffer.slice(end + 2);
        if (data) messages.push(JSON.parse(data) as Json);
      }
    }
  })();
  return {
    messages,
    async until(found, ms = 3_000) {
      const deadline = Date.now() + ms;
      while (!messages.some(found)) {
        if (Date.now() > deadline) throw new Error(`no such event; got ${JSON.stringify(messages)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async cancel() {
      await reader.cancel().catch(() => undefined);
      await pump;
    },
  };
}

describe('MCP 2026-07-28 through the gateway', () => {
  let upstream: ModernUpstream;
  let stack: Stack;
  let reader: string;
  let writer: string;

  beforeAll(async () => {
    upstream = await startModernUpstream();
    stack = await startStack({ responseMode: 'json', upstreamUrl: upstream.url, policy: POLICY });
    const token = async (scope: string, subject: string) => (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope, subject })).accessToken;
    [reader, writer] = await Promise.all([token('todo:read', 'rita'), token('todo:read todo:write', 'wanda')]);
  }, 30_000);
  afterAll(async () => {
    await stack?.close();
    await upstream?.close();
  });

  it('serves a stateless call: no session, the mirrored headers forwarded, never the token', async () => {
    upstream.clearLog();
    const response = await post(stack.mcpUrl, reader, 'tools/call', { name: 'list_todos', arguments: {} }, { 'mcp-session-id': 'left-over' });
    expect(response.status).toBe(200);
    expect(response.headers.get('mcp-session-id')).toBeNull();
    const body = (await response.json()) as { result: { resultType: string } };
    expect(body.result.resultType).toBe('complete');
    const [forwarded] = upstream.requests;
    expect(forwarded!.headers['mcp-method']).toBe('tools/call');
    expect(forwarded!.headers['mcp-name']).toBe('list_todos');
    expect(forwarded!.headers['mcp-protocol-version']).toBe(V);
    expect(forwarded!.headers['mcp-session-id']).toBeUndefined();
    expect(forwarded!.headers.authorization).toBeUndefined();
  });

  it('answers a denied tool in a stateless call as an unknown tool, unforwarded', async () => {
    upstream.clearLog();
    const response = await post(stack.mcpUrl, writer, 'tools/call', { name: 'secret_tool', arguments: {} }, {}, 'deny-1');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 'deny-1', error: { code: -32602, message: 'Unknown tool: secret_tool' } });
    expect(upstream.requests).toHaveLength(0);
  });

  it('refuses headers that do not mirror the body with HeaderMismatch, unforwarded, whatever the policy would allow', async () => {
    upstream.clearLog();
    // Mcp-Name names an allowed tool, the body a denied one: decided (and refused) on the body alone.
    const lying = await post(stack.mcpUrl, writer, 'tools/call', { name: 'secret_tool', arguments: {} }, { 'mcp-name': 'list_todos' }, 'mm-1');
    expect(lying.status).toBe(400);
    expect(await lying.json()).toMatchObject({ jsonrpc: '2.0', id: 'mm-1', error: { code: -32020 } });
    const missing = await fetch(stack.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${reader}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': V },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'list_todos', _meta: { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': {} } } }),
    });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { code: number } }).error.code).toBe(-32020);
    // A 2026-07-28 body under a 2025 version header would skip these checks: refused too.
    const olderHeader = await post(stack.mcpUrl, reader, 'tools/call', { name: 'list_todos', arguments: {} }, { 'mcp-protocol-version': '2025-11-25' });
    expect(olderHeader.status).toBe(400);
    await olderHeader.text();
    expect(upstream.requests).toHaveLength(0);
  });

  it('answers a method no policy names 404 with -32601, as 2026-07-28 answers unknown methods, unforwarded', async () => {
    upstream.clearLog();
    const response = await post(stack.mcpUrl, reader, 'vendor/secret_admin', {}, {}, 'm-1');
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 'm-1', error: { code: -32601, message: 'Method not found: vendor/secret_admin' } });
    expect(upstream.requests).toHaveLength(0);
  });

  it('filters a list and marks it cacheScope "private", keeping the upstream hints otherwise', async () => {
    const response = await post(stack.mcpUrl, writer, 'tools/list');
    expect(response.status).toBe(200);
    const { result } = (await response.json()) as { result: { tools: { name: string }[]; cacheScope: string; ttlMs: number } };
    expect(result.tools.map((t) => t.name).sort()).toEqual(['add_todo', 'confirm_delete', 'list_todos', 'whoami']);
    // The upstream said "public" (see dev/upstream-2026.ts): the gateway's view is per principal.
    expect(result.cacheScope).toBe('private');
    expect(result.ttlMs).toBe(60_000);
  });

  it('steps up a stateless call with one challenge naming every scope it needs', async () => {
    const response = await post(stack.mcpUrl, reader, 'tools/call', { name: 'add_todo', arguments: { title: 'x' } });
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toContain('scope="todo:read todo:write"');
    await response.text();
  });

  it('passes a multi round-trip call, and authorises the retry like the original', async () => {
    const first = await post(stack.mcpUrl, writer, 'tools/call', { name: 'confirm_delete', arguments: { title: 'doomed' } });
    const { result } = (await first.json()) as { result: { resultType: string; requestState: string; inputRequests: Json } };
    expect(result.resultType).toBe('input_required');
    expect(Object.keys(result.inputRequests)).toEqual(['confirm']);
    const retryParams = { name: 'confirm_delete', arguments: { title: 'doomed' }, inputResponses: { confirm: { action: 'accept', content: { confirm: true } } }, requestState: result.requestState };
    // Another principal replaying the retry is decided like the call itself: it lacks todo:write.
    upstream.clearLog();
    const replay = await post(stack.mcpUrl, reader, 'tools/call', retryParams);
    expect(replay.status).toBe(403);
    await replay.text();
    expect(upstream.requests).toHaveLength(0);
    const retry = await post(stack.mcpUrl, writer, 'tools/call', retryParams);
    const done = (await retry.json()) as { result: { resultType: string; content: { text: string }[] } };
    expect(done.result).toMatchObject({ resultType: 'complete', content: [{ text: 'deleted' }] });
  });

  it('refuses a listen stream on a resource the principal may not read, before the upstream sees it', async () => {
    upstream.clearLog();
    const secret = await post(stack.mcpUrl, reader, 'subscriptions/listen', { notifications: { resourceSubscriptions: ['secret://admin-notes'] } });
    expect(secret.status).toBe(403);
    expect(secret.headers.get('www-authenticate')).toContain('todo:admin');
    await secret.text();
    const unknown = await post(stack.mcpUrl, reader, 'subscriptions/listen', { notifications: { resourceSubscriptions: ['elsewhere://x'] } }, {}, 'l-0');
    expect(await unknown.json()).toEqual({ jsonrpc: '2.0', id: 'l-0', error: { code: -32602, message: 'Resource not found' } });
    expect(upstream.requests).toHaveLength(0);
  });

  it('keeps notifications about tools from a listen stream whose principal may not list them', async () => {
    const listen = { notifications: { toolsListChanged: true, promptsListChanged: true, resourceSubscriptions: ['todo://list'] } };
    const [writerStream, readerStream] = await Promise.all([post(stack.mcpUrl, writer, 'subscriptions/listen', listen, {}, 'w-listen'), post(stack.mcpUrl, reader, 'subscriptions/listen', listen, {}, 'r-listen')]);
    expect(writerStream.status).toBe(200);
    expect(readerStream.status).toBe(200);
    expect(readerStream.headers.get('content-type')).toContain('text/event-stream');
    const writerEvents = collectEvents(writerStream);
    const readerEvents = collectEvents(readerStream);
    try {
      const acknowledged = (m: Json) => m.method === 'notifications/subscriptions/acknowledged';
      await Promise.all([writerEvents.until(acknowledged), readerEvents.until(acknowledged)]);
      upstream.notifyToolsChanged();
      upstream.notifyResourceUpdated('todo://list');
      upstream.notifyPromptsChanged();
      const prompts = (m: Json) => m.method === 'notifications/prompts/list_changed';
      await Promise.all([writerEvents.until(prompts), readerEvents.until(prompts)]);
      const methods = (events: Json[]) => events.map((m) => m.method);
      // Rita may not list tools (tools/list needs todo:write): she hears nothing about them.
      expect(methods(readerEvents.messages)).toEqual([
        'notifications/subscriptions/acknowledged', 'notifications/resources/updated', 'notifications/prompts/list_changed',
      ]);
      expect(methods(writerEvents.messages)).toEqual([
        'notifications/subscriptions/acknowledged', 'notifications/tools/list_changed', 'notifications/resources/updated', 'notifications/prompts/list_changed',
      ]);
    } finally {
      await Promise.all([writerEvents.cancel(), readerEvents.cancel()]);
    }
  });

  it('does not forward the mirrored headers of 2026-07-28 with an older version, where nothing checks them', async () => {
    upstream.clearLog();
    const response = await fetch(stack.mcpUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${reader}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-11-25', 'mcp-method': 'tools/call', 'mcp-name': 'delete_everything', 'mcp-param-repo': 'evil/y',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list_todos', arguments: {} } }),
    });
    expect(response.status).toBe(200);
    await response.text();
    const [forwarded] = upstream.requests;
    expect(forwarded!.headers['mcp-protocol-version']).toBe('2025-11-25');
    expect(Object.keys(forwarded!.headers).filter((name) => name.startsWith('mcp-') && name !== 'mcp-protocol-version')).toEqual([]);
  });

  it('has no GET stream and no DELETE in 2026-07-28', async () => {
    for (const method of ['GET', 'DELETE']) {
      const response = await fetch(stack.mcpUrl, { method, headers: { authorization: `Bearer ${reader}`, accept: 'text/event-stream', 'mcp-protocol-version': V } });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('POST');
      await response.text();
    }
  });
});

describe('a 2026-07-28 listen stream outlives no token', () => {
  let upstream: ModernUpstream;
  let stack: Stack;

  beforeAll(async () => {
    upstream = await startModernUpstream();
    stack = await startStack({ responseMode: 'json', upstreamUrl: upstream.url, policy: POLICY, accessTokenTtlSeconds: 2 });
  }, 30_000);
  afterAll(async () => {
    await stack?.close();
    await upstream?.close();
  });

  it('ends the stream cleanly when the token that opened it expires', async () => {
    const token = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read' })).accessToken;
    const started = Date.now();
    const response = await post(stack.mcpUrl, token, 'subscriptions/listen', { notifications: { promptsListChanged: true } });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    for (;;) if ((await reader.read()).done) break;
    // Ended by the gateway at the token's expiry (2 s), not by the upstream, and not cut.
    expect(Date.now() - started).toBeGreaterThan(500);
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 15_000);
});
