/**
 * Sample upstream MCP server that speaks protocol revision 2026-07-28 (stateless: no initialize,
 * no Mcp-Session-Id; per-request `_meta` envelope; `server/discover`; `subscriptions/listen`;
 * multi round-trip `input_required` results), built on the official TypeScript SDK v2 split
 * packages — `@modelcontextprotocol/server` (createMcpHandler, McpServer, inputRequired,
 * createRequestStateCodec) and `@modelcontextprotocol/node` (toNodeHandler) — and served by plain
 * `node:http`.
 *
 * The same endpoint also serves 2025-era traffic (e.g. 2025-11-25 from the v1 SDK client): the
 * SDK's createMcpHandler routes requests without the 2026 `_meta` envelope to its built-in
 * stateless legacy fallback (a fresh McpServer from the same factory per request; GET and DELETE
 * answer 405). Pass `legacy: 'reject'` for a modern-only endpoint.
 *
 * Like dev/upstream.ts it has NO auth of its own and logs every HTTP request before the SDK sees
 * it, so tests can prove what did (and did not) reach it.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { toNodeHandler, type NodeIncomingMessageLike } from '@modelcontextprotocol/node';
import {
  acceptedContent,
  createMcpHandler,
  createRequestStateCodec,
  inputRequired,
  inputResponse,
  McpServer,
  type CallToolResult,
  type McpRequestContext,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { z } from 'zod';

/** The protocol revision this upstream exists for. */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';

export const MODERN_TOOL_NAMES = ['list_todos', 'add_todo', 'secret_tool', 'whoami', 'confirm_delete'] as const satisfies readonly string[];
export const MODERN_RESOURCE_URI = 'todo://list';
export const MODERN_SECRET_RESOURCE_URI = 'secret://admin-notes';
export const MODERN_PROMPT_NAME = 'summarize_todos';
export const MODERN_INTERNAL_PROMPT_NAME = 'internal_triage';
/** Key of the elicitation inside confirm_delete's `inputRequests` / the retry's `inputResponses`. */
export const CONFIRM_INPUT_KEY = 'confirm';

/**
 * Cache hints the SDK puts on cacheable 2026-07-28 results (`ttlMs` / `cacheScope`). tools/list is
 * deliberately `public` with a non-zero TTL so gateway tests can see what happens to a shared-cache
 * hint on a list the gateway filters per user; everything else keeps the SDK default
 * `{ ttlMs: 0, cacheScope: 'private' }`.
 */
export const MODERN_CACHE_HINTS = {
  'tools/list': { ttlMs: 60_000, cacheScope: 'public' },
} as const;

export interface ModernUpstreamRequestRecord {
  /** HTTP method. */
  method: string;
  /** `req.url` as received (path + query). */
  path: string;
  /** Raw incoming headers, lower-case names (a shallow copy of `req.headers`). */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body; the raw text if it was not valid JSON; undefined when there was no body. */
  body: unknown;
}

export interface ModernUpstreamOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** Default '/mcp'. */
  path?: string;
  /**
   * How 2025-era (envelope-less) requests are served. Default 'stateless' (SDK fallback: fresh
   * server per request, GET/DELETE 405). 'reject': modern-only, legacy requests get the SDK's
   * unsupported-protocol-version error.
   */
  legacy?: 'stateless' | 'reject';
  /**
   * Response shaping of modern request exchanges (SDK option). Default 'auto': JSON unless the
   * handler emits a related message first. subscriptions/listen is always SSE.
   */
  responseMode?: 'auto' | 'sse' | 'json';
}

export interface ModernUpstream {
  /** e.g. http://127.0.0.1:PORT/mcp */
  url: string;
  /** Every HTTP request received, in arrival order, recorded before the SDK sees it. */
  requests: ModernUpstreamRequestRecord[];
  /** Errors and request rejections the SDK reported through createMcpHandler's onerror. */
  errors: Error[];
  clearLog(): void;
  /** notifications/tools/list_changed on every open listen stream that asked for toolsListChanged. */
  notifyToolsChanged(): void;
  /** notifications/prompts/list_changed on every open listen stream that asked for promptsListChanged. */
  notifyPromptsChanged(): void;
  /** notifications/resources/list_changed on every open listen stream that asked for resourcesListChanged. */
  notifyResourcesChanged(): void;
  /** notifications/resources/updated {uri} on every open listen stream whose resourceSubscriptions list `uri`. */
  notifyResourceUpdated(uri: string): void;
  /** Ends open listen streams gracefully (final `resultType: "complete"` frame), then stops the HTTP server. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Todo state (one per started upstream; every per-request McpServer shares it)
// ---------------------------------------------------------------------------------------------

class TodoList {
  private titles: string[] = ['Try the MCP auth gateway'];

  add(title: string): void {
    this.titles.push(title);
  }

  remove(title: string): boolean {
    const before = this.titles.length;
    this.titles = this.titles.filter((t) => t !== title);
    return this.titles.length !== before;
  }

  all(): readonly string[] {
    return this.titles;
  }

  render(): string {
    return `todos: ${this.titles.length === 0 ? '(none)' : this.titles.join(', ')}`;
  }
}

// ---------------------------------------------------------------------------------------------
// MCP server definition
// ---------------------------------------------------------------------------------------------

function text(value: string, isError = false): CallToolResult {
  return { content: [{ type: 'text', text: value }], ...(isError ? { isError: true } : {}) };
}

/** Payload sealed (HMAC, not encrypted) into confirm_delete's requestState. */
interface DeleteState {
  tool: 'confirm_delete';
  title: string | null;
}

const confirmSchema = z.object({ confirm: z.boolean().describe('Really delete?') });

type RequestStateCodec = ReturnType<typeof createRequestStateCodec<DeleteState>>;

/** One fresh McpServer per HTTP request (createMcpHandler calls this factory per request/era). */
function createModernMcpServer(todos: TodoList, codec: RequestStateCodec, ctx: McpRequestContext): McpServer {
  const server = new McpServer(
    { name: 'sample-todo-upstream-2026', version: '1.0.0' },
    {
      // tools/prompts listChanged are declared by McpServer itself once something is registered;
      // resources.subscribe must be declared or the SDK drops `resourceSubscriptions` from the
      // listen filter it honours.
      capabilities: { resources: { subscribe: true, listChanged: true } },
      cacheHints: MODERN_CACHE_HINTS,
      // The SDK verifies (HMAC, expiry, binding) every echoed requestState BEFORE the handler runs
      // and answers a bad one with -32602 "Invalid or expired requestState".
      requestState: { verify: (state, handlerCtx) => codec.verify(state, handlerCtx) },
    },
  );
  registerTools(server, todos, codec, ctx);
  registerResourcesAndPrompts(server, todos);
  return server;
}

function headerOf(ctx: ServerContext, factoryCtx: McpRequestContext, name: string): string | null {
  return ctx.http?.req?.headers.get(name) ?? factoryCtx.requestInfo?.headers.get(name) ?? null;
}

function registerTools(server: McpServer, todos: TodoList, codec: RequestStateCodec, factoryCtx: McpRequestContext): void {
  server.registerTool('list_todos', { description: 'List all todos' }, () => text(todos.render()));

  server.registerTool('add_todo', { description: 'Add a todo', inputSchema: z.object({ title: z.string().min(1) }) }, ({ title }) => {
    todos.add(title);
    return text(`added ${title}`);
  });

  // The gateway's example policy denies this one: if it ever runs, the policy leaked.
  server.registerTool('secret_tool', { description: 'Should never be reachable through the gateway' }, () => text('the secret is 42'));

  // For identity-header tests: echoes what the gateway told the upstream about the caller.
  server.registerTool('whoami', { description: 'Echo the x-mcp-subject header the request carried' }, (ctx) => {
    const subject = headerOf(ctx, factoryCtx, 'x-mcp-subject');
    const identity: Record<string, string> = {};
    const headers = ctx.http?.req?.headers ?? factoryCtx.requestInfo?.headers;
    headers?.forEach((value, name) => {
      if (name.startsWith('x-mcp-')) identity[name] = value;
    });
    return { ...text(subject ?? 'anonymous'), structuredContent: { subject, headers: identity } };
  });

  // Multi round-trip (SEP MRTR): first call answers resultType "input_required" with an embedded
  // elicitation/create request and an HMAC-sealed requestState (SDK helpers inputRequired(),
  // inputRequired.elicit(), createRequestStateCodec()); the retry carries params.inputResponses
  // + params.requestState under a new JSON-RPC id and completes with "deleted".
  server.registerTool(
    'confirm_delete',
    {
      description: 'Delete a todo (or nothing) after the user confirms',
      inputSchema: z.object({ title: z.string().optional() }),
    },
    async ({ title }, ctx) => {
      const state = ctx.mcpReq.requestState<DeleteState>();
      const answer = inputResponse(ctx.mcpReq.inputResponses, CONFIRM_INPUT_KEY);
      if (state?.tool === 'confirm_delete' && answer.kind === 'elicit') {
        const confirmed = acceptedContent(ctx.mcpReq.inputResponses, CONFIRM_INPUT_KEY, confirmSchema);
        if (answer.action !== 'accept' || confirmed?.confirm !== true) return text('not deleted', true);
        if (state.title !== null) todos.remove(state.title);
        return text('deleted');
      }
      return inputRequired({
        inputRequests: {
          [CONFIRM_INPUT_KEY]: inputRequired.elicit({
            message: title === undefined ? 'Delete?' : `Delete "${title}"?`,
            requestedSchema: confirmSchema,
          }),
        },
        requestState: await codec.mint({ tool: 'confirm_delete', title: title ?? null }, ctx),
      });
    },
  );
}

function registerResourcesAndPrompts(server: McpServer, todos: TodoList): void {
  server.registerResource('todos', MODERN_RESOURCE_URI, { description: 'The todo list as JSON', mimeType: 'application/json' }, (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(todos.all()) }],
  }));
  server.registerResource('admin-notes', MODERN_SECRET_RESOURCE_URI, { description: 'Notes for admins only', mimeType: 'text/plain' }, (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'the admin password is hunter2' }],
  }));

  server.registerPrompt(MODERN_PROMPT_NAME, { description: 'Ask the model to summarize the todo list' }, () => ({
    messages: [{ role: 'user', content: { type: 'text', text: `Summarize these todos:\n${todos.render()}` } }],
  }));
  server.registerPrompt(MODERN_INTERNAL_PROMPT_NAME, { description: 'Internal triage instructions' }, () => ({
    messages: [{ role: 'user', content: { type: 'text', text: 'internal: triage by severity' } }],
  }));
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseBody(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  const textBody = raw.toString('utf8');
  try {
    return JSON.parse(textBody) as unknown;
  } catch {
    return textBody;
  }
}

/**
 * The request as toNodeHandler sees it: same method/url/headers, body replayed from the bytes we
 * already read for the log (so the SDK parses exactly what arrived, invalid JSON included).
 */
function replayRequest(req: IncomingMessage, raw: Buffer): NodeIncomingMessageLike {
  return {
    ...(req.method !== undefined ? { method: req.method } : {}),
    ...(req.url !== undefined ? { url: req.url } : {}),
    headers: req.headers,
    async *[Symbol.asyncIterator]() {
      if (raw.length > 0) yield raw;
    },
  };
}

export async function startModernUpstream(options: ModernUpstreamOptions = {}): Promise<ModernUpstream> {
  const host = options.host ?? '127.0.0.1';
  const mcpPath = options.path ?? '/mcp';

  const todos = new TodoList();
  const requests: ModernUpstreamRequestRecord[] = [];
  const errors: Error[] = [];
  // Per-upstream random key: one process serves every round of a confirm_delete flow. The state
  // is bound to the method, so a requestState minted for tools/call is useless elsewhere.
  const codec = createRequestStateCodec<DeleteState>({ key: randomBytes(32), bind: (ctx) => ctx.mcpReq.method });

  const handler = createMcpHandler((ctx) => createModernMcpServer(todos, codec, ctx), {
    legacy: options.legacy ?? 'stateless',
    ...(options.responseMode !== undefined ? { responseMode: options.responseMode } : {}),
    onerror: (error) => {
      errors.push(error);
    },
  });
  const nodeHandler = toNodeHandler(handler, {
    onerror: (error) => {
      errors.push(error);
    },
  });

  // Responses still being written (listen streams above all), so close() can let them finish.
  const openResponses = new Set<Promise<void>>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const done = new Promise<void>((resolve) => res.once('close', resolve));
    openResponses.add(done);
    void done.then(() => openResponses.delete(done));

    const record: ModernUpstreamRequestRecord = { method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, body: undefined };
    requests.push(record);
    const raw = await readBody(req);
    record.body = parseBody(raw);

    const pathname = new URL(req.url ?? '/', 'http://upstream.invalid').pathname;
    if (pathname !== mcpPath) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not_found' }));
      return;
    }
    // Host/Origin validation is deliberately left out: the gateway forwards its own Host.
    await nodeHandler(replayRequest(req, raw), res);
  }

  const httpServer: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      errors.push(err instanceof Error ? err : new Error(String(err)));
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null }));
      } else {
        res.end();
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 0, host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const { port } = httpServer.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  async function close(): Promise<void> {
    // Graceful: each open listen stream gets its final result frame and is ended. Give the node
    // adapter a moment to flush those frames before sockets are torn down.
    await handler.close();
    await Promise.race([Promise.all(openResponses), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    await new Promise<void>((resolve) => {
      httpServer.close(() => resolve());
      // Idle keep-alive sockets (and any stream a client still holds) would keep close() open.
      httpServer.closeAllConnections();
    });
  }

  return {
    url: `http://${urlHost}:${port}${mcpPath}`,
    requests,
    errors,
    clearLog: () => {
      requests.length = 0;
      errors.length = 0;
    },
    notifyToolsChanged: () => handler.notify.toolsChanged(),
    notifyPromptsChanged: () => handler.notify.promptsChanged(),
    notifyResourcesChanged: () => handler.notify.resourcesChanged(),
    notifyResourceUpdated: (uri) => handler.notify.resourceUpdated(uri),
    close,
  };
}
