/**
 * A test-only MCP "everything" server for the conformance suite's server scenarios, on the real
 * SDK v2 (`@modelcontextprotocol/server` + `@modelcontextprotocol/node`) and plain `node:http`.
 *
 * One endpoint serves both wire eras, the way the SDK documents it (`isLegacyRequest` /
 * `classifyInboundRequest`): 2025-era traffic (initialize, Mcp-Session-Id) goes to sessionful
 * streamable HTTP transports with an event store (SEP-1699 resumption); anything claiming the
 * 2026-07-28 per-request `_meta` envelope, malformed claims included, goes to `createMcpHandler`
 * with `legacy: 'reject'`, so the SDK's own validation ladder answers them.
 *
 * Like a local MCP server should, it refuses a non-loopback Host (DNS rebinding). It has no
 * auth of its own: that is the gateway's job.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeStreamableHTTPServerTransport, toNodeHandler } from '@modelcontextprotocol/node';
import {
  classifyInboundRequest,
  createMcpHandler,
  createRequestStateCodec,
  isInitializeRequest,
  McpServer,
  type EventStore,
  type JSONRPCMessage,
} from '@modelcontextprotocol/server';
import { registerCatalog } from './everything-catalog.js';
import { registerTools, type EverythingHooks, type StateCodec } from './everything-tools.js';

export interface EverythingServer {
  /** http://127.0.0.1:PORT/mcp */
  readonly url: string;
  close(): Promise<void>;
}

function createEverythingMcpServer(codec: StateCodec, hooks: EverythingHooks): McpServer {
  const server = new McpServer(
    { name: 'conformance-everything-server', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        // Deprecated in 2026-07-28 (SEP-2577) but still what 2025 logging/setLevel negotiates.
        logging: {},
        completions: {},
      },
      // SEP-2322: every echoed requestState is verified before a handler sees it.
      requestState: { verify: (state, ctx) => codec.verify(state, ctx) },
    },
  );
  registerTools(server, codec, hooks);
  registerCatalog(server);
  return server;
}

/** Events kept per stream so a client can resume after Last-Event-ID (SEP-1699). */
function memoryEventStore(): EventStore {
  const events: { id: string; streamId: string; message: JSONRPCMessage }[] = [];
  let sequence = 0;
  return {
    storeEvent(streamId, message) {
      const id = `${streamId}_${String(++sequence).padStart(10, '0')}`;
      events.push({ id, streamId, message });
      return Promise.resolve(id);
    },
    async replayEventsAfter(lastEventId, { send }) {
      const last = events.find((event) => event.id === lastEventId);
      if (!last) throw new Error(`unknown event ${lastEventId}`);
      for (const event of events) {
        if (event.streamId === last.streamId && event.id > lastEventId) await send(event.id, event.message);
      }
      return last.streamId;
    },
  };
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function loopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  return LOOPBACK_HOSTS.has(host.replace(/:\d+$/, '').toLowerCase());
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sendJsonRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

async function readJson(req: IncomingMessage): Promise<{ ok: true; body: unknown } | { ok: false }> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return { ok: true, body: undefined };
  try {
    return { ok: true, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown };
  } catch {
    return { ok: false };
  }
}

export async function startEverythingServer(): Promise<EverythingServer> {
  // One key per process: the 2026 path serves every round from a fresh McpServer.
  const codec = createRequestStateCodec<Record<string, unknown>>({ key: randomBytes(32) });
  const hooks: EverythingHooks = { toolsChanged: () => modern.notify.toolsChanged(), promptsChanged: () => modern.notify.promptsChanged() };
  const modern = createMcpHandler(() => createEverythingMcpServer(codec, hooks), { legacy: 'reject' });
  const modernNode = toNodeHandler(modern);
  const sessions = new Map<string, { transport: NodeStreamableHTTPServerTransport; server: McpServer }>();

  async function startSession(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const server = createEverythingMcpServer(codec, hooks);
    const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      eventStore: memoryEventStore(),
      retryInterval: 500,
      onsessioninitialized: (id) => void sessions.set(id, { transport, server }),
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/mcp') return sendJsonRpcError(res, 404, -32601, 'Not found');
    if (!loopbackHost(header(req, 'host'))) return sendJsonRpcError(res, 403, -32000, 'Host not allowed');
    const parsed = await readJson(req);
    if (!parsed.ok) return sendJsonRpcError(res, 400, -32700, 'Parse error');

    const inbound = classifyInboundRequest({
      httpMethod: req.method ?? 'GET',
      protocolVersionHeader: header(req, 'mcp-protocol-version'),
      mcpMethodHeader: header(req, 'mcp-method'),
      mcpNameHeader: header(req, 'mcp-name'),
      body: parsed.body,
    });
    if (inbound.kind !== 'legacy') return modernNode(req, res, parsed.body);

    const sessionId = header(req, 'mcp-session-id');
    const session = sessionId === undefined ? undefined : sessions.get(sessionId);
    if (session) return session.transport.handleRequest(req, res, parsed.body);
    if (sessionId !== undefined) return sendJsonRpcError(res, 404, -32001, 'Session not found');
    if (req.method === 'POST' && isInitializeRequest(parsed.body)) return startSession(req, res, parsed.body);
    sendJsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id required');
  }

  const http = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJsonRpcError(res, 500, -32603, 'Internal error');
      else res.end();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async close() {
      await modern.close();
      await Promise.allSettled([...sessions.values()].map(({ server }) => server.close()));
      sessions.clear();
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    },
  };
}
