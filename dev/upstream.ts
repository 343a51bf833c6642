/**
 * Sample upstream MCP server (a tiny todo app) built on the real `@modelcontextprotocol/sdk`
 * server, served by plain `node:http`.
 *
 * It is the thing the gateway protects in end-to-end tests and in `npm run demo`, so it has NO
 * auth of its own. Every HTTP request is logged (before the SDK sees it) so tests can prove that
 * denied calls and client bearer tokens never reached it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { posix } from 'node:path';

import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ErrorCode, isInitializeRequest, McpError, SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
// zod comes in as a peer dependency of the SDK (v4 at the time of writing); registerTool
// accepts a raw shape of zod schemas as `inputSchema`.
import { z } from 'zod';

export interface UpstreamRequestRecord {
  /** HTTP method. */
  method: string;
  /** `req.url` as received (path + query). */
  path: string;
  /** Raw incoming headers, lower-case names (a shallow copy of `req.headers`). */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body for POST; the raw text if it was not valid JSON; undefined otherwise. */
  body: unknown;
  /** JSON-RPC methods in the body (batch-aware), in body order. */
  rpcMethods: string[];
  /** `params.name` of every `tools/call` in the body. */
  toolNames: string[];
}

export interface SampleUpstreamOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** Default '/mcp'. */
  path?: string;
  /** 'json' => enableJsonResponse: true; 'sse' => POST responses are text/event-stream. */
  responseMode: 'json' | 'sse';
  /**
   * Default false: one transport + McpServer per session keyed by Mcp-Session-Id, with GET
   * (standalone SSE stream) and DELETE support. true: new server + transport per POST; GET and
   * DELETE answer 405.
   */
  stateless?: boolean;
  /**
   * Default false. true: also serve the resources of URI spelling attacks (see
   * SAMPLE_URI_FIXTURES), list a few in spellings a policy must not trust, and accept
   * resources/subscribe, as a server a `resources:` policy protects would.
   */
  uriFixtures?: boolean;
}

export interface SampleUpstream {
  /** e.g. http://127.0.0.1:PORT/mcp */
  url: string;
  /** Every HTTP request received, in arrival order. */
  requests: UpstreamRequestRecord[];
  clearLog(): void;
  /**
   * Sends notifications/tools/list_changed and a notifications/message (logging) on every open
   * session. Without a relatedRequestId the SDK routes these to the session's standalone GET
   * stream; if that stream is not open (yet) they are silently dropped.
   */
  notifyAll(): Promise<void>;
  /**
   * Sends notifications/resources/updated about `uri` on every open session, subscribed or not,
   * as a careless server might: the gateway must decide who may hear it. Goes to the standalone
   * GET stream, like notifyAll().
   */
  notifyResourceUpdated(uri: string): Promise<void>;
  /** Number of live sessions (always 0 in stateless mode). */
  sessionCount(): number;
  close(): Promise<void>;
}

export const SAMPLE_TOOL_NAMES = [
  'list_todos',
  'add_todo',
  'delete_todo',
  'admin_reset',
  'admin_stats',
  'secret_tool',
  'unlisted_tool',
  'slow_progress',
] as const satisfies readonly string[];

export const SAMPLE_RESOURCE_URI = 'todo://list';
export const SAMPLE_PROMPT_NAME = 'summarize_todos';
/** A resource, a template and a prompt a policy would keep from ordinary users. */
export const SAMPLE_SECRET_RESOURCE_URI = 'secret://admin-notes';
export const SAMPLE_ITEM_TEMPLATE = 'todo://item/{id}';
export const SAMPLE_INTERNAL_PROMPT_NAME = 'internal_triage';

/**
 * Completions (MCP §Completion): each prompt has one optional completable argument, and the
 * item template completes `id`. The internal prompt's values are what a policy that hides the
 * prompt must keep hidden.
 */
export const SAMPLE_PROMPT_ARGUMENT = 'filter';
export const SAMPLE_PROMPT_COMPLETIONS = ['all', 'done', 'open'] as const;
export const SAMPLE_INTERNAL_PROMPT_ARGUMENT = 'severity';
export const SAMPLE_INTERNAL_PROMPT_COMPLETIONS = ['sev1-breach-internal', 'sev2-outage-internal'] as const;
export const SAMPLE_ITEM_TEMPLATE_ARGUMENT = 'id';

/**
 * With `uriFixtures`: a private and a public resource under one scheme (`note://`), which the
 * SDK finds by the WHATWG parse of the URI asked for (so `note://private/..` reads the private
 * note), and a private and a public file served through the template SAMPLE_FILE_TEMPLATE, its
 * path joined onto a root as a file server does (so `file:///public/x?/../../private/x` reads
 * the private file). `listedOddly` are listed (not readable) in spellings that are not a URI's
 * normal form, as a quirky server might list them.
 */
export const SAMPLE_FILE_TEMPLATE = 'file:///{+path}';
export const SAMPLE_URI_FIXTURES = {
  privateNote: { uri: 'note://private', text: 'the private note: launch codes 0000' },
  publicNote: { uri: 'note://public', text: 'the public note' },
  privateFile: { uri: 'file:///private/x', text: 'the private file' },
  publicFile: { uri: 'file:///public/x', text: 'the public file' },
  listedOddly: ['note://public/../private', 'note://public/%2e%2e/private', 'note://Public/x', 'note://public/y#top'],
} as const;

// ---------------------------------------------------------------------------------------------
// Todo state
// ---------------------------------------------------------------------------------------------

interface Todo {
  id: number;
  title: string;
}

/**
 * In-memory todo list. One instance per started upstream, shared by all its sessions, so a todo
 * added in one session (or one stateless request) is visible in the next.
 */
export class TodoStore {
  private todos: Todo[] = [];
  private nextId = 1;
  toolCalls = 0;

  constructor() {
    this.reset();
  }

  reset(): void {
    this.todos = [];
    this.nextId = 1;
    this.add('Try the MCP auth gateway');
  }

  add(title: string): Todo {
    const todo = { id: this.nextId++, title };
    this.todos.push(todo);
    return todo;
  }

  delete(id: number): boolean {
    const before = this.todos.length;
    this.todos = this.todos.filter((t) => t.id !== id);
    return this.todos.length !== before;
  }

  list(): readonly Todo[] {
    return this.todos;
  }

  render(): string {
    if (this.todos.length === 0) return 'No todos.';
    return this.todos.map((t) => `#${t.id} ${t.title}`).join('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// MCP server definition
// ---------------------------------------------------------------------------------------------

function text(value: string, isError = false) {
  return { content: [{ type: 'text' as const, text: value }], ...(isError ? { isError: true } : {}) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Builds a fresh McpServer wired to the shared store. The SDK needs one server per transport. */
export function createSampleMcpServer(store: TodoStore, options: { uriFixtures?: boolean } = {}): McpServer {
  const server = new McpServer(
    { name: 'sample-todo-upstream', version: '1.0.0' },
    // logging capability so notifyAll() may send notifications/message.
    { capabilities: { logging: {} } },
  );
  registerTodoTools(server, store);
  registerAdminAndPolicyTools(server, store);
  registerSlowProgressTool(server, store);
  registerResourceAndPrompt(server, store);
  if (options.uriFixtures) registerUriFixtures(server);
  return server;
}

function registerTodoTools(server: McpServer, store: TodoStore): void {
  server.registerTool('list_todos', { description: 'List all todos' }, () => {
    store.toolCalls++;
    return text(store.render());
  });

  server.registerTool(
    'add_todo',
    { description: 'Add a todo', inputSchema: { title: z.string().min(1) } },
    ({ title }) => {
      store.toolCalls++;
      const todo = store.add(title);
      return text(`Added #${todo.id} ${todo.title}`);
    },
  );

  server.registerTool(
    'delete_todo',
    { description: 'Delete a todo by id', inputSchema: { id: z.number().int() } },
    ({ id }) => {
      store.toolCalls++;
      return store.delete(id) ? text(`Deleted #${id}`) : text(`No todo #${id}`, true);
    },
  );
}

/** Tools that exist mainly so gateway policies (scopes, deny, default) have something to hit. */
function registerAdminAndPolicyTools(server: McpServer, store: TodoStore): void {
  server.registerTool('admin_reset', { description: 'Reset the todo list (admin)' }, () => {
    store.toolCalls++;
    store.reset();
    return text('Todo list reset');
  });

  server.registerTool('admin_stats', { description: 'Usage statistics (admin)' }, () => {
    store.toolCalls++;
    return text(JSON.stringify({ todos: store.list().length, toolCalls: store.toolCalls }));
  });

  // The gateway's example policy denies this one: if it ever runs, the policy leaked.
  server.registerTool('secret_tool', { description: 'Should never be reachable through the gateway' }, () => {
    store.toolCalls++;
    return text('the secret is 42');
  });

  // No policy entry matches this one: exercises the gateway's default decision.
  server.registerTool('unlisted_tool', { description: 'A tool no policy mentions' }, () => {
    store.toolCalls++;
    return text('unlisted tool ran');
  });
}

/**
 * Emits one notifications/progress per step when the caller supplied `_meta.progressToken`.
 * Passing through `extra.sendNotification` ties the notification to this request
 * (relatedRequestId), so in 'sse' mode each one is written to the POST's SSE stream as its own
 * event, spaced by delayMs — which is what lets tests check the gateway streams event by event.
 * In 'json' mode the SDK has no stream to put them on and they are dropped.
 */
function registerSlowProgressTool(server: McpServer, store: TodoStore): void {
  server.registerTool(
    'slow_progress',
    {
      description: 'Report progress over several steps, then finish',
      inputSchema: {
        steps: z.number().int().min(1).max(100).optional(),
        delayMs: z.number().int().min(0).max(10_000).optional(),
      },
    },
    async ({ steps = 3, delayMs = 50 }, extra) => {
      store.toolCalls++;
      const progressToken = extra._meta?.progressToken;
      for (let step = 1; step <= steps; step++) {
        if (extra.signal.aborted) return text(`Cancelled at step ${step}`, true);
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress: step, total: steps, message: `step ${step}/${steps}` },
          });
        }
        await sleep(delayMs);
      }
      return text(`Done after ${steps} steps`);
    },
  );
}

function registerResourceAndPrompt(server: McpServer, store: TodoStore): void {
  server.registerResource(
    'todos',
    SAMPLE_RESOURCE_URI,
    { description: 'The todo list as JSON', mimeType: 'application/json' },
    (uri) => ({
      contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(store.list()) }],
    }),
  );

  server.registerResource('admin-notes', SAMPLE_SECRET_RESOURCE_URI, { description: 'Notes for admins only', mimeType: 'text/plain' }, (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'the admin password is hunter2' }],
  }));
  server.registerResource(
    'todo-item',
    new ResourceTemplate(SAMPLE_ITEM_TEMPLATE, {
      list: undefined,
      complete: { [SAMPLE_ITEM_TEMPLATE_ARGUMENT]: (value) => store.list().map((t) => String(t.id)).filter((id) => id.startsWith(value)) },
    }),
    { description: 'One todo as JSON', mimeType: 'application/json' },
    (uri, { id }) => ({ contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(store.list().find((t) => String(t.id) === String(id)) ?? null) }] }),
  );
  server.registerPrompt(
    SAMPLE_INTERNAL_PROMPT_NAME,
    { description: 'Internal triage instructions', argsSchema: { [SAMPLE_INTERNAL_PROMPT_ARGUMENT]: completer(SAMPLE_INTERNAL_PROMPT_COMPLETIONS) } },
    () => ({
      messages: [{ role: 'user', content: { type: 'text', text: 'internal: triage by severity' } }],
    }),
  );

  server.registerPrompt(
    SAMPLE_PROMPT_NAME,
    { description: 'Ask the model to summarize the todo list', argsSchema: { [SAMPLE_PROMPT_ARGUMENT]: completer(SAMPLE_PROMPT_COMPLETIONS) } },
    () => ({
    messages: [
      {
        role: 'user',
        content: { type: 'text', text: `Summarize these todos:\n${store.render()}` },
      },
    ],
    }),
  );
}

/**
 * An optional prompt argument completing to the values that start with what was typed. The
 * SDK looks for the completer on the argument's own schema, so the optional schema is wrapped.
 */
function completer(values: readonly string[]) {
  return completable(z.string().optional(), (value) => values.filter((candidate) => candidate.startsWith(value ?? '')));
}

function registerUriFixtures(server: McpServer): void {
  const { privateNote, publicNote, privateFile, publicFile, listedOddly } = SAMPLE_URI_FIXTURES;
  for (const [name, fixture] of Object.entries({ privateNote, publicNote })) {
    server.registerResource(name, fixture.uri, { mimeType: 'text/plain' }, (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: fixture.text }] }));
  }
  // Files as a file server serves them: the template's path joined onto its root.
  const files = new Map([privateFile, publicFile].map((file) => [new URL(file.uri).pathname, file.text]));
  server.registerResource(
    'files',
    new ResourceTemplate(SAMPLE_FILE_TEMPLATE, { list: () => ({ resources: [privateFile, publicFile].map((file) => ({ uri: file.uri, name: file.uri })) }) }),
    { mimeType: 'text/plain' },
    (uri, { path }) => {
      const text = files.get(posix.join('/', String(path)));
      if (text === undefined) throw new McpError(ErrorCode.InvalidParams, `Resource ${uri.href} not found`);
      return { contents: [{ uri: uri.href, mimeType: 'text/plain', text }] };
    },
  );
  listedOddly.forEach((uri, i) => server.registerResource(`odd-${i}`, uri, { mimeType: 'text/plain' }, () => ({ contents: [] })));
  // Subscriptions are accepted and forgotten: notifyResourceUpdated() tells every session anyway.
  server.server.registerCapabilities({ resources: { subscribe: true, listChanged: true } });
  server.server.setRequestHandler(SubscribeRequestSchema, () => ({}));
  server.server.setRequestHandler(UnsubscribeRequestSchema, () => ({}));
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Extracts JSON-RPC methods and tools/call names from a single message or a batch. */
export function summarizeRpc(body: unknown): { rpcMethods: string[]; toolNames: string[] } {
  const messages = Array.isArray(body) ? body : [body];
  const rpcMethods: string[] = [];
  const toolNames: string[] = [];
  for (const message of messages) {
    if (!isRecord(message) || typeof message.method !== 'string') continue;
    rpcMethods.push(message.method);
    const params = message.params;
    if (message.method === 'tools/call' && isRecord(params) && typeof params.name === 'string') {
      toolNames.push(params.name);
    }
  }
  return { rpcMethods, toolNames };
}

function sendJson(res: ServerResponse, status: number, payload: unknown, extraHeaders: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...extraHeaders });
  res.end(JSON.stringify(payload));
}

function sendRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  sendJson(res, status, { jsonrpc: '2.0', error: { code, message }, id: null });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

interface Session {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
}

type ParsedRequest = { ok: true; body: unknown } | { ok: false };

// ---------------------------------------------------------------------------------------------
// Upstream server
// ---------------------------------------------------------------------------------------------

export async function startSampleUpstream(opts: SampleUpstreamOptions): Promise<SampleUpstream> {
  const host = opts.host ?? '127.0.0.1';
  const mcpPath = opts.path ?? '/mcp';
  const stateless = opts.stateless ?? false;
  const enableJsonResponse = opts.responseMode === 'json';
  const uriFixtures = opts.uriFixtures ?? false;

  const store = new TodoStore();
  const requests: UpstreamRequestRecord[] = [];
  const sessions = new Map<string, Session>();
  // Stateless server/transport pairs still handling a request, so close() can reach them.
  const inFlight = new Set<Session>();

  function newTransport(sessionIdGenerator: (() => string) | undefined, onInit?: (id: string) => void) {
    return new StreamableHTTPServerTransport({
      sessionIdGenerator,
      enableJsonResponse,
      // The gateway forwards its own Host/Origin, so the SDK's DNS-rebinding check must stay off.
      enableDnsRebindingProtection: false,
      ...(onInit ? { onsessioninitialized: onInit } : {}),
    });
  }

  /** Reads and logs the request. Returns the parsed body, or ok:false once a 400 was sent. */
  async function recordRequest(req: IncomingMessage, res: ServerResponse): Promise<ParsedRequest> {
    const record: UpstreamRequestRecord = {
      method: req.method ?? '',
      path: req.url ?? '',
      headers: { ...req.headers },
      body: undefined,
      rpcMethods: [],
      toolNames: [],
    };
    requests.push(record);
    if (req.method !== 'POST') return { ok: true, body: undefined };

    const raw = await readBody(req);
    try {
      record.body = JSON.parse(raw) as unknown;
    } catch {
      // Keep the raw text so a test can still see what arrived; the SDK never sees it.
      record.body = raw;
      sendRpcError(res, 400, -32700, 'Parse error: body is not valid JSON');
      return { ok: false };
    }
    Object.assign(record, summarizeRpc(record.body));
    return { ok: true, body: record.body };
  }

  async function handleStateless(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    if (req.method !== 'POST') {
      // No session means no standalone stream and nothing to delete; the SDK client treats a
      // 405 on GET as "server does not offer a GET stream".
      sendRpcError(res, 405, -32000, 'Method not allowed in stateless mode');
      return;
    }
    const pair: Session = { transport: newTransport(undefined), server: createSampleMcpServer(store, { uriFixtures }) };
    inFlight.add(pair);
    res.on('close', () => {
      inFlight.delete(pair);
      void pair.server.close();
    });
    await pair.server.connect(pair.transport);
    await pair.transport.handleRequest(req, res, body);
  }

  async function handleSessionful(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const sessionId = headerValue(req.headers['mcp-session-id']);
    if (sessionId !== undefined) {
      const session = sessions.get(sessionId);
      if (!session) return sendRpcError(res, 404, -32001, 'Session not found');
      return session.transport.handleRequest(req, res, body);
    }
    if (req.method === 'POST' && isInitializeRequest(body)) return initializeSession(req, res, body);
    sendRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
  }

  async function initializeSession(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const server = createSampleMcpServer(store, { uriFixtures });
    // Store the session from onsessioninitialized (not after handleRequest) so a follow-up
    // request racing the initialize response can already find it.
    const transport = newTransport(randomUUID, (id) => sessions.set(id, { transport, server }));
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = await recordRequest(req, res);
    if (!parsed.ok) return;

    const pathname = new URL(req.url ?? '/', 'http://upstream.invalid').pathname;
    if (pathname !== mcpPath) return sendJson(res, 404, { error: 'not_found' });

    if (stateless) await handleStateless(req, res, parsed.body);
    else await handleSessionful(req, res, parsed.body);
  }

  const httpServer: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      console.error('[sample-upstream] error handling request', err);
      if (!res.headersSent) sendRpcError(res, 500, -32603, 'Internal server error');
      else res.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(opts.port ?? 0, host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const { port } = httpServer.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  async function notifyAll(): Promise<void> {
    await Promise.all(
      [...sessions.values()].map(async ({ server }) => {
        // The low-level Server's variant returns a promise (McpServer's is fire-and-forget).
        await server.server.sendToolListChanged();
        await server.sendLoggingMessage({ level: 'info', logger: 'sample-upstream', data: 'ping from upstream' });
      }),
    );
  }

  async function notifyResourceUpdated(uri: string): Promise<void> {
    await Promise.all([...sessions.values()].map(({ server }) => server.server.sendResourceUpdated({ uri })));
  }

  async function close(): Promise<void> {
    const open = [...sessions.values(), ...inFlight];
    sessions.clear();
    inFlight.clear();
    // McpServer.close() closes its transport, which ends any open SSE responses.
    await Promise.allSettled(open.map(({ server }) => server.close()));
    await new Promise<void>((resolve) => {
      httpServer.close(() => resolve());
      // Idle keep-alive and long-lived SSE sockets would otherwise hold close() open.
      httpServer.closeAllConnections();
    });
  }

  return {
    url: `http://${urlHost}:${port}${mcpPath}`,
    requests,
    clearLog: () => {
      requests.length = 0;
    },
    notifyAll,
    notifyResourceUpdated,
    sessionCount: () => sessions.size,
    close,
  };
}
