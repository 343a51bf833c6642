import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { startModernUpstream, type ModernUpstream } from '../../dev/upstream-2026.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * Version checks and refusals of parsed requests through the gateway (issue 23 items 5 and 13),
 * in front of the real 2026-07-28 upstream (the official SDK v2 server, which also serves 2025
 * traffic), with real tokens. Each refusal is shown as the client receives it (status, JSON-RPC
 * code, data and id) and shown not to have reached the upstream; each has its control, the same
 * request made legal, which the upstream answers.
 */

const V = '2026-07-28';
const POLICY = `scopes: [todo:read]
tools:
  list_todos: [todo:read]
  secret_tool: deny
resources:
  "todo://*": [todo:read]
`;

type Json = Record<string, unknown>;
const meta = (version: string) => ({ 'io.modelcontextprotocol/protocolVersion': version, 'io.modelcontextprotocol/clientCapabilities': {} });

describe('version checks and refusals carry the request id, and nothing refused is forwarded', () => {
  let upstream: ModernUpstream;
  let stack: Stack;
  let token: string;

  const post = (body: unknown, headers: Record<string, string>) =>
    fetch(stack.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  /** A 2026-07-28 request with its mirrored headers, as a conforming client sends it. */
  const modern = (id: string | number, method: string, params: Json = {}, extraHeaders: Record<string, string> = {}) => {
    const name = typeof params.name === 'string' ? params.name : method === 'resources/read' ? (params.uri as string) : undefined;
    return post(
      { jsonrpc: '2.0', id, method, params: { ...params, _meta: meta(V) } },
      { 'mcp-protocol-version': V, 'mcp-method': method, ...(name !== undefined ? { 'mcp-name': name } : {}), ...extraHeaders },
    );
  };

  beforeAll(async () => {
    upstream = await startModernUpstream();
    stack = await startStack({ responseMode: 'json', upstreamUrl: upstream.url, policy: POLICY });
    token = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read' })).accessToken;
  }, 30_000);
  afterAll(async () => {
    await stack?.close();
    await upstream?.close();
  });
  beforeEach(() => upstream.clearLog());

  describe('a 2026-07-28 message second in an older batch (item 5)', () => {
    // An older version in the first element's _meta must not stand for the whole batch.
    const plain = { jsonrpc: '2.0', id: 'b-1', method: 'tools/list', params: { _meta: meta('2025-03-26') } };
    const hidden = { jsonrpc: '2.0', id: 'b-2', method: 'tools/call', params: { name: 'list_todos', arguments: {}, _meta: meta(V) } };

    it('is refused without the 2026-07-28 header (400, HeaderMismatch -32020 for each request of the batch), unforwarded', async () => {
      for (const headers of [{}, { 'mcp-protocol-version': '2025-03-26' }] as Record<string, string>[]) {
        const response = await post([plain, hidden], headers);
        expect(response.status).toBe(400);
        const answer = (await response.json()) as { jsonrpc: string; id: unknown; error: { code: number } }[];
        expect(answer.map((element) => [element.jsonrpc, element.id, element.error.code])).toEqual([
          ['2.0', 'b-1', -32020],
          ['2.0', 'b-2', -32020],
        ]);
      }
      expect(upstream.requests).toHaveLength(0);
    });

    it('control: the 2026-07-28 message sent alone with its headers is forwarded and answered', async () => {
      const response = await modern('b-2', 'tools/call', { name: 'list_todos', arguments: {} });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ jsonrpc: '2.0', id: 'b-2', result: { resultType: 'complete' } });
      expect(upstream.requests).toHaveLength(1);
    });
  });

  describe('an unsupported protocol version (item 13)', () => {
    it('answers an unsupported MCP-Protocol-Version on a 2026-07-28 body with UnsupportedProtocolVersionError (400, -32022, supported, requested) under the request id, unforwarded', async () => {
      const response = await post({ jsonrpc: '2.0', id: 'u-1', method: 'tools/list', params: { _meta: meta('2099-01-01') } }, { 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'tools/list' });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        jsonrpc: '2.0',
        id: 'u-1',
        error: { code: -32022, message: 'Unsupported protocol version: 2099-01-01', data: { supported: [V], requested: '2099-01-01' } },
      });
      expect(upstream.requests).toHaveLength(0);
    });

    it('answers a _meta version it does not know, under no version header, with UnsupportedProtocolVersionError naming it, unforwarded', async () => {
      const response = await post({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: meta('2099-01-01') } }, {});
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        jsonrpc: '2.0',
        id: 7,
        error: { code: -32022, message: 'Unsupported protocol version: 2099-01-01', data: { supported: [V], requested: '2099-01-01' } },
      });
      expect(upstream.requests).toHaveLength(0);
    });

    it('answers an unsupported version header on a 2025 body with 400 / -32600 under the request id, unforwarded', async () => {
      const response = await post({ jsonrpc: '2.0', id: 'old-1', method: 'tools/list' }, { 'mcp-protocol-version': '1999-01-01' });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 'old-1', error: { code: -32600, message: 'Unsupported MCP-Protocol-Version: 1999-01-01' } });
      expect(upstream.requests).toHaveLength(0);
    });

    it('answers a _meta version other than a 2026-07-28 header with HeaderMismatch (-32020) under the request id, unforwarded', async () => {
      const response = await post({ jsonrpc: '2.0', id: 'mm', method: 'tools/list', params: { _meta: meta('2099-01-01') } }, { 'mcp-protocol-version': V, 'mcp-method': 'tools/list' });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ jsonrpc: '2.0', id: 'mm', error: { code: -32020 } });
      expect(upstream.requests).toHaveLength(0);
    });

    it('control: the same request at 2026-07-28 is forwarded and answered', async () => {
      const response = await modern('u-1', 'tools/list');
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ jsonrpc: '2.0', id: 'u-1', result: { tools: [{ name: 'list_todos' }] } });
      expect(upstream.requests).toHaveLength(1);
    });
  });

  describe('methods 2026-07-28 removed (item 13)', () => {
    it.each(['resources/subscribe', 'resources/unsubscribe'])('answers %s at 2026-07-28 with 404 / -32601 under the request id, unforwarded', async (method) => {
      const response = await modern(`${method}-1`, method, { uri: 'todo://list' });
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ jsonrpc: '2.0', id: `${method}-1`, error: { code: -32601, message: `Method not found: ${method}` } });
      expect(upstream.requests).toHaveLength(0);
    });

    it('control: a resource read at 2026-07-28 on the same URI is forwarded and answered', async () => {
      const response = await modern('read-1', 'resources/read', { uri: 'todo://list' });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ jsonrpc: '2.0', id: 'read-1', result: { contents: [{ uri: 'todo://list' }] } });
      expect(upstream.requests).toHaveLength(1);
    });
  });

  describe('any refusal of a parsed request carries its id (item 13)', () => {
    it('answers a duplicate key and a malformed call under the request id, unforwarded', async () => {
      const duplicate = await post(
        `{"jsonrpc":"2.0","id":"dup-1","method":"tools/call","params":{"name":"list_todos","name":"secret_tool","arguments":{},"_meta":${JSON.stringify(meta(V))}}}`,
        { 'mcp-protocol-version': V, 'mcp-method': 'tools/call', 'mcp-name': 'secret_tool' },
      );
      expect(duplicate.status).toBe(400);
      expect(await duplicate.json()).toEqual({ jsonrpc: '2.0', id: 'dup-1', error: { code: -32600, message: 'Invalid Request: duplicate key in JSON object' } });
      const nameless = await post({ jsonrpc: '2.0', id: 'nameless', method: 'tools/call', params: { arguments: {}, _meta: meta(V) } }, { 'mcp-protocol-version': V, 'mcp-method': 'tools/call' });
      expect(nameless.status).toBe(400);
      expect(await nameless.json()).toMatchObject({ jsonrpc: '2.0', id: 'nameless', error: { code: -32600 } });
      expect(upstream.requests).toHaveLength(0);
    });

    it('answers every request of a 2025-03-26 batch with one bad element, in an array, unforwarded', async () => {
      const response = await post(
        [
          { jsonrpc: '2.0', id: 1, method: 'tools/list' },
          { jsonrpc: '2.0', method: 'notifications/initialized' },
          { jsonrpc: '2.0', id: 'bad', method: 'tools/call', params: { name: 7 } },
        ],
        { 'mcp-protocol-version': '2025-03-26' },
      );
      expect(response.status).toBe(400);
      expect(((await response.json()) as { id: unknown; error: { code: number } }[]).map((element) => [element.id, element.error.code])).toEqual([
        [1, -32600],
        ['bad', -32600],
      ]);
      expect(upstream.requests).toHaveLength(0);
    });
  });
});
