import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { mcpRequest } from '../support/mcp-http.js';
import { startRouteGateway, type RouteGateway } from '../support/route-gateway.js';
import { sseMessages } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * The list filter and answers to tool calls. A response under a tools/call's id is that tool's
 * result, and a tool's result is not a list: it is relayed as the upstream wrote it, even when it
 * happens to have a `tools` member naming hidden tools (the filter has no business editing a
 * tool's output), in JSON and SSE answers alike. Every other answer that may carry a list is
 * filtered, whatever the body asked: a list under another id (an upstream may answer on any
 * stream), an answer to a body of notifications only, a list beside the tool's result in a stream.
 *
 * The upstream is a bare node:http server answering every request with `result.tools` naming
 * every tool, hidden ones included, as JSON or (when asked with ?sse) as an SSE event; with
 * ?stray it answers under the id 'stray' instead of the request's, and with ?sse a second event
 * under 'stray' follows the answer. A body of notifications only is answered 200 with a list.
 */

const TOOLS = [
  { name: 'list_todos', inputSchema: { type: 'object' } },
  { name: 'secret_tool', inputSchema: { type: 'object' } },
  { name: 'unlisted_tool', inputSchema: { type: 'object' } },
];
/** What the example policy shows a todo:read caller of those. */
const VISIBLE = ['list_todos'];
const ALL = TOOLS.map((tool) => tool.name);

type Message = { jsonrpc: string; id?: unknown; method?: string };

function answerTo(message: Message) {
  return { jsonrpc: '2.0', id: message.id, result: { content: [{ type: 'text', text: `answer to ${message.method}` }], tools: TOOLS } };
}

async function startListingUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Message | Message[];
    const stray = req.url?.includes('stray') ?? false;
    const answerOne = (message: Message) => answerTo(stray || message.id === undefined ? { ...message, id: 'stray' } : message);
    const answer = Array.isArray(body) ? body.map(answerOne) : answerOne(body);
    if (req.url?.includes('sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`event: message\ndata: ${JSON.stringify(answer)}\n\nevent: message\ndata: ${JSON.stringify(answerTo({ jsonrpc: '2.0', id: 'stray', method: 'tools/list' }))}\n\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
  };
  const server: Server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const toolNames = (message: unknown) => ((message as { result: { tools: { name: string }[] } }).result.tools ?? []).map((tool) => tool.name);

describe('answers to tool calls alone and the list filter', () => {
  let stack: Stack;
  let upstream: Awaited<ReturnType<typeof startListingUpstream>>;
  let json: RouteGateway;
  let sse: RouteGateway;
  let stray: RouteGateway;
  const tokens = {} as Record<'json' | 'sse' | 'stray', string>;

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'json' });
    upstream = await startListingUpstream();
    json = await startRouteGateway({ issuer: stack.idp.issuer, upstreamUrl: upstream.url });
    sse = await startRouteGateway({ issuer: stack.idp.issuer, upstreamUrl: `${upstream.url}?sse` });
    stray = await startRouteGateway({ issuer: stack.idp.issuer, upstreamUrl: `${upstream.url}?stray` });
    tokens.json = (await obtainAccessToken(stack.idp, { resource: json.mcpUrl, scope: 'todo:read' })).accessToken;
    tokens.sse = (await obtainAccessToken(stack.idp, { resource: sse.mcpUrl, scope: 'todo:read' })).accessToken;
    tokens.stray = (await obtainAccessToken(stack.idp, { resource: stray.mcpUrl, scope: 'todo:read' })).accessToken;
  });
  afterAll(async () => {
    await json?.close();
    await sse?.close();
    await stray?.close();
    await upstream?.close();
    await stack?.close();
  });

  const call = { jsonrpc: '2.0', id: 'call-1', method: 'tools/call', params: { name: 'list_todos', arguments: {} } };
  const list = { jsonrpc: '2.0', id: 'list-1', method: 'tools/list' };

  it('relays a JSON answer to a tools/call byte for byte, whatever its result holds', async () => {
    const response = await mcpRequest(json.mcpUrl, call, { token: tokens.json });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(JSON.stringify(answerTo(call)));
  });

  it('filters a JSON answer to a tools/list', async () => {
    const response = await mcpRequest(json.mcpUrl, list, { token: tokens.json });
    expect(response.status).toBe(200);
    expect(toolNames(await response.json())).toEqual(VISIBLE);
  });

  it('filters the list in a JSON answer to a batch of a tools/list and a tool call, and leaves the tool result as written (2025-03-26)', async () => {
    const batch = async (messages: unknown[]) => {
      const response = await fetch(json.mcpUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.json}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-03-26' },
        body: JSON.stringify(messages),
      });
      expect(response.status).toBe(200);
      return (await response.json()) as unknown[];
    };
    expect((await batch([call, list])).map(toolNames)).toEqual([ALL, VISIBLE]);
    expect((await batch([call, { ...call, id: 'call-2' }])).map(toolNames)).toEqual([ALL, ALL]);
  });

  it('relays the tool result in an SSE answer as written, and filters a list under another id on the same stream', async () => {
    const response = await mcpRequest(sse.mcpUrl, call, { token: tokens.sse });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const messages = sseMessages(await response.text()) as Message[];
    expect(messages.map((message) => [message.id, toolNames(message)])).toEqual([
      ['call-1', ALL],
      ['stray', VISIBLE],
    ]);
  });

  it('filters a list that answers a tools/call under another id (an answer meant for another request)', async () => {
    const response = await mcpRequest(stray.mcpUrl, call, { token: tokens.stray });
    expect(response.status).toBe(200);
    expect(toolNames(await response.json())).toEqual(VISIBLE);
  });

  it('filters a list answering a body of notifications only, and a tool call sent with a notification', async () => {
    const notification = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'x' } };
    const alone = await mcpRequest(json.mcpUrl, notification, { token: tokens.json });
    expect(alone.status).toBe(200);
    expect(toolNames(await alone.json())).toEqual(VISIBLE);
    const response = await fetch(json.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.json}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-03-26' },
      body: JSON.stringify([notification, call]),
    });
    expect(((await response.json()) as unknown[]).map(toolNames)).toEqual([VISIBLE, ALL]);
  });
});
