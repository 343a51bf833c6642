import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { mcpRequest } from '../support/mcp-http.js';
import { startRouteGateway, type RouteGateway } from '../support/route-gateway.js';
import { sseMessages } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * The list filter and answers to tool calls alone. A JSON answer to a body whose requests are all
 * tools/call holds their results, and a tool's result is not a list: it is relayed as the upstream
 * wrote it, even when it happens to have a `tools` member naming hidden tools (the filter has no
 * business editing a tool's output). Answers to anything else, and every SSE answer, still go
 * through the filter.
 *
 * The upstream is a bare node:http server answering every request with `result.tools` naming
 * every tool, hidden ones included, as JSON or (when asked with ?sse) as an SSE event.
 */

const TOOLS = [
  { name: 'list_todos', inputSchema: { type: 'object' } },
  { name: 'secret_tool', inputSchema: { type: 'object' } },
  { name: 'unlisted_tool', inputSchema: { type: 'object' } },
];
/** What the example policy shows a todo:read caller of those. */
const VISIBLE = ['list_todos'];

type Message = { jsonrpc: string; id?: unknown; method?: string };

function answerTo(message: Message) {
  return { jsonrpc: '2.0', id: message.id, result: { content: [{ type: 'text', text: `answer to ${message.method}` }], tools: TOOLS } };
}

async function startListingUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Message | Message[];
    const answer = Array.isArray(body) ? body.map(answerTo) : answerTo(body);
    if (req.url?.endsWith('?sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`event: message\ndata: ${JSON.stringify(answer)}\n\n`);
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
  const tokens = {} as Record<'json' | 'sse', string>;

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'json' });
    upstream = await startListingUpstream();
    json = await startRouteGateway({ issuer: stack.idp.issuer, upstreamUrl: upstream.url });
    sse = await startRouteGateway({ issuer: stack.idp.issuer, upstreamUrl: `${upstream.url}?sse` });
    tokens.json = (await obtainAccessToken(stack.idp, { resource: json.mcpUrl, scope: 'todo:read' })).accessToken;
    tokens.sse = (await obtainAccessToken(stack.idp, { resource: sse.mcpUrl, scope: 'todo:read' })).accessToken;
  });
  afterAll(async () => {
    await json?.close();
    await sse?.close();
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

  it('filters a JSON answer to a batch that holds a tools/list among tool calls (2025-03-26)', async () => {
    const batch = async (messages: unknown[]) => {
      const response = await fetch(json.mcpUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.json}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-03-26' },
        body: JSON.stringify(messages),
      });
      expect(response.status).toBe(200);
      return (await response.json()) as unknown[];
    };
    expect((await batch([call, list])).map(toolNames)).toEqual([VISIBLE, VISIBLE]);
    expect((await batch([call, { ...call, id: 'call-2' }])).map(toolNames)).toEqual([TOOLS.map((tool) => tool.name), TOOLS.map((tool) => tool.name)]);
  });

  it('still filters an SSE answer to a tools/call: a stream may carry more than the result', async () => {
    const response = await mcpRequest(sse.mcpUrl, call, { token: tokens.sse });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    expect(sseMessages(await response.text()).map(toolNames)).toEqual([VISIBLE]);
  });
});
