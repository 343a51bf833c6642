/**
 * The benchmark's upstream: a real MCP server (@modelcontextprotocol/sdk's low-level Server and
 * its Streamable HTTP transport, stateful sessions) with 200 tools, served on three paths of one
 * process, so every row and workload talks to the same upstream:
 *
 *   /mcp       answers POSTs with JSON (tools/call small_call, tools/list of 200 tools)
 *   /mcp-sse   answers POSTs with text/event-stream (progress_call: progress events, then the result)
 *   /mcp-lean  a bare handler, not the SDK: the same answer to the small tools/call as /mcp gives,
 *              byte for byte, at a quarter of the SDK's CPU and without its pauses (handleLean)
 *   /hold      a bare handler, not the SDK: initialize gets a fresh Mcp-Session-Id, a GET opens an
 *              SSE stream that stays idle (the idle-streams memory measurement; 10,000 SDK
 *              sessions would only load the upstream, not the gateway being measured)
 *
 * The tool list is built once: what is measured is forwarding and filtering it, not building it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, isInitializeRequest, ListToolsRequestSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';

export const TOOL_COUNT = 200;
/** The small tools/call of the first workload. */
export const SMALL_TOOL = 'small_call';
/** The SSE workload's tool: `steps` progress notifications, then the result. */
export const PROGRESS_TOOL = 'progress_call';
/** Tools the benchmark's filtering policy hides (`admin_*: deny`): 20 of the 200. */
export const HIDDEN_TOOL_PREFIX = 'admin_';
export const HIDDEN_TOOL_COUNT = 20;

/** 200 tools shaped like real ones: a sentence of description and a small JSON Schema each. */
function buildTools(): Tool[] {
  const tool = (name: string, description: string): Tool => ({
    name,
    description,
    inputSchema: {
      type: 'object',
      properties: {
        query: { type: 'string', description: 'What to look for' },
        limit: { type: 'integer', minimum: 1, maximum: 100, description: 'At most this many results' },
      },
      required: ['query'],
    },
  });
  const tools = [tool(SMALL_TOOL, 'Answers with one short line of text'), tool(PROGRESS_TOOL, 'Reports progress over several steps, then finishes')];
  for (let i = 0; tools.length < TOOL_COUNT - HIDDEN_TOOL_COUNT; i++) {
    tools.push(tool(`tool_${String(i).padStart(3, '0')}`, `Sample tool number ${i}: searches the catalogue and returns matching records`));
  }
  for (let i = 0; i < HIDDEN_TOOL_COUNT; i++) {
    tools.push(tool(`${HIDDEN_TOOL_PREFIX}${String(i).padStart(3, '0')}`, `Administrative operation ${i}: not for ordinary users`));
  }
  return tools;
}

const TOOLS = buildTools();

function createMcpServer(): Server {
  const server = new Server({ name: 'mcp-auth-gateway-bench-upstream', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const { name, arguments: args } = request.params;
    if (name === PROGRESS_TOOL) {
      const steps = typeof args?.steps === 'number' ? args.steps : 5;
      const progressToken = request.params._meta?.progressToken;
      for (let step = 1; step <= steps; step++) {
        if (progressToken !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: step, total: steps, message: `step ${step}/${steps}` } });
        }
      }
      return { content: [{ type: 'text', text: `done after ${steps} steps` }] };
    }
    if (TOOLS.some((tool) => tool.name === name)) return { content: [{ type: 'text', text: 'ok' }] };
    return { content: [{ type: 'text', text: `unknown tool ${name}` }], isError: true };
  });
  return server;
}

interface Session {
  readonly transport: StreamableHTTPServerTransport;
  readonly server: Server;
}

/** One MCP endpoint: SDK sessions keyed by Mcp-Session-Id, JSON or SSE answers to POSTs. */
class SdkEndpoint {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly enableJsonResponse: boolean) {}

  async handle(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const session = this.sessions.get(sessionId);
      if (!session) return sendJson(res, 404, { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      return session.transport.handleRequest(req, res, body);
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32000, message: 'No valid session ID provided' }, id: null });
    }
    const server = createMcpServer();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      enableJsonResponse: this.enableJsonResponse,
      onsessioninitialized: (id) => void this.sessions.set(id, { transport, server }),
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) this.sessions.delete(transport.sessionId);
    };
    if (this.enableJsonResponse) releaseAnsweredJsonStreams(transport);
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  async close(): Promise<void> {
    const open = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(open.map(({ server }) => server.close()));
  }
}

/**
 * SDK 1.x never releases a JSON-mode POST's stream mapping once it has answered
 * (modelcontextprotocol/typescript-sdk#2559; the v1.x fix, #2747, is not released): every request
 * of a session stays in memory until the session ends, about 6 KB each. A run's session grew the
 * upstream's heap by hundreds of MB, and its mark-compact pauses then decided the fixed-rate p99
 * of every row alike. Here each mapping is released as its answer is resolved. A later SDK whose
 * transport has no such map is left alone.
 */
function releaseAnsweredJsonStreams(transport: StreamableHTTPServerTransport): void {
  type Mapping = Map<string, { resolveJson?: (response: Response) => void }>;
  const mapping = (transport as unknown as { _webStandardTransport?: { _streamMapping?: unknown } })._webStandardTransport?._streamMapping;
  if (!(mapping instanceof Map)) return;
  const streams = mapping as Mapping;
  const set = streams.set.bind(streams);
  streams.set = (id, entry) => {
    const resolve = entry.resolveJson;
    if (resolve) {
      entry.resolveJson = (response) => {
        streams.delete(id);
        resolve(response);
      };
    }
    return set(id, entry);
  };
}

/**
 * Idle SSE streams, cheaply: initialize answers with a new session id (the gateway binds it to the
 * caller), and a GET opens a stream that says one comment line and then nothing until closed.
 */
function handleHold(req: IncomingMessage, res: ServerResponse, body: unknown): void {
  if (req.method === 'POST' && isInitializeRequest(body)) {
    const result = { protocolVersion: body.params.protocolVersion, capabilities: {}, serverInfo: { name: 'bench-hold', version: '1' } };
    return sendJson(res, 200, { jsonrpc: '2.0', id: (body as { id?: unknown }).id ?? null, result }, { 'mcp-session-id': randomUUID() });
  }
  if (req.method === 'POST') {
    res.writeHead(202).end();
    return;
  }
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(': open\n\n');
    return;
  }
  res.writeHead(405).end();
}

/**
 * The small tools/call answered as the SDK answers it on /mcp (the same status, headers and
 * bytes), by a bare handler. The SDK spends about 200 µs of CPU on each call and collects garbage
 * about ten times a second, pausing about 4 ms each time on two shared cores: at a fixed rate
 * those stalls set the p99 of every row alike, direct to the upstream included, and what the
 * proxies themselves add is lost in their spread. This answers in about 50 µs, so a fixed-rate
 * run against it shows the proxies (docs/performance.md, Method).
 */
function handleLean(req: IncomingMessage, res: ServerResponse, body: unknown): void {
  if (req.method === 'POST' && isInitializeRequest(body)) {
    const result = { protocolVersion: body.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'bench-lean', version: '1' } };
    return sendJson(res, 200, { jsonrpc: '2.0', id: (body as { id?: unknown }).id ?? null, result }, { 'mcp-session-id': randomUUID() });
  }
  const sessionId = req.headers['mcp-session-id'];
  if (typeof sessionId !== 'string') return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32000, message: 'No valid session ID provided' }, id: null });
  if (req.method === 'DELETE') {
    res.writeHead(200).end();
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  const message = body as { id?: unknown; method?: unknown; params?: { name?: unknown } } | null;
  if (message?.id === undefined) {
    res.writeHead(202).end();
    return;
  }
  if (message.method !== 'tools/call' || message.params?.name !== SMALL_TOOL) {
    return sendJson(res, 200, { jsonrpc: '2.0', id: message.id, error: { code: -32601, message: `bench-lean answers only tools/call ${SMALL_TOOL}` } });
  }
  res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': sessionId });
  res.end(`{"result":{"content":[{"type":"text","text":"ok"}]},"jsonrpc":"2.0","id":${JSON.stringify(message.id)}}`);
}

function sendJson(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(payload));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export interface BenchUpstream {
  /** http://127.0.0.1:PORT (no path). */
  readonly origin: string;
  close(): Promise<void>;
}

export async function startBenchUpstream(): Promise<BenchUpstream> {
  const json = new SdkEndpoint(true);
  const sse = new SdkEndpoint(false);
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let body: unknown;
    if (req.method === 'POST') {
      try {
        body = JSON.parse(await readBody(req)) as unknown;
      } catch {
        return sendJson(res, 400, { jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
      }
    }
    const path = (req.url ?? '').split('?', 1)[0];
    if (path === '/mcp') return json.handle(req, res, body);
    if (path === '/mcp-sse') return sse.handle(req, res, body);
    if (path === '/mcp-lean') return handleLean(req, res, body);
    if (path === '/hold') return handleHold(req, res, body);
    sendJson(res, 404, { error: 'not_found' });
  };
  const server: HttpServer = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      process.stderr.write(`bench upstream: ${(error as Error).stack ?? String(error)}\n`);
      if (!res.headersSent) sendJson(res, 500, { jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null });
      else res.end();
    });
  });
  // Thousands of idle streams: no per-request deadline may end them.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    async close() {
      await Promise.all([json.close(), sse.close()]);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
