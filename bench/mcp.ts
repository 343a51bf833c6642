/** The benchmark's MCP traffic: the workloads, session setup, and a correctness check per workload. */
import { PROGRESS_TOOL, SMALL_TOOL } from './upstream.js';

export const PROTOCOL_VERSION = '2025-06-18';
/** Progress events the SSE workload's answer carries before its result. */
export const PROGRESS_STEPS = 5;

export type WorkloadId = 'call' | 'call-lean' | 'list' | 'sse';

export interface Workload {
  readonly id: WorkloadId;
  readonly label: string;
  /** Upstream path it is served on (JSON answers on /mcp, SSE answers on /mcp-sse, the bare handler on /mcp-lean). */
  readonly upstreamPath: '/mcp' | '/mcp-sse' | '/mcp-lean';
  /**
   * The measured request. autocannon's idReplacement puts a fresh id in place of `[<id>]` on
   * every request: connections share one session, and the SDK upstream pairs answers with
   * concurrent requests of a session by JSON-RPC id, so ids must never repeat in flight.
   */
  readonly body: string;
  /** Why one answer is wrong (undefined: it is right); `tools` is how many tools a list must hold. */
  check(status: number, contentType: string, text: string, tools: number): string | undefined;
}

const request = (method: string, params: Record<string, unknown>) => JSON.stringify({ jsonrpc: '2.0', id: '[<id>]', method, params });

/** The JSON-RPC messages of an answer, whether plain JSON or an SSE stream of `data:` events. */
function messagesOf(contentType: string, text: string): unknown[] {
  if (!contentType.startsWith('text/event-stream')) return [JSON.parse(text) as unknown];
  return text
    .split(/\r?\n\r?\n/)
    .map((event) => event.split(/\r?\n/).filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trimStart()).join('\n'))
    .filter((data) => data !== '')
    .map((data) => JSON.parse(data) as unknown);
}

type Message = { method?: string; result?: { content?: unknown[]; isError?: boolean; tools?: unknown[] }; error?: unknown };

const SMALL_CALL = request('tools/call', { name: SMALL_TOOL, arguments: {} });

function checkSmallCall(status: number, contentType: string, text: string): string | undefined {
  const [answer] = messagesOf(contentType, text) as Message[];
  // HTTP 200 alone would also cover a JSON-RPC error ("Unknown tool" is a 200 too).
  return status === 200 && Array.isArray(answer?.result?.content) && answer.result.isError !== true ? undefined : 'not a successful tools/call result';
}

export const WORKLOADS: readonly Workload[] = [
  {
    id: 'call',
    label: `small tools/call (${SMALL_TOOL}, JSON answer)`,
    upstreamPath: '/mcp',
    body: SMALL_CALL,
    check: checkSmallCall,
  },
  {
    id: 'call-lean',
    label: `small tools/call (${SMALL_TOOL}, JSON answer), lean upstream (bare node:http, not the SDK)`,
    upstreamPath: '/mcp-lean',
    body: SMALL_CALL,
    check: checkSmallCall,
  },
  {
    id: 'list',
    label: 'tools/list of 200 tools (JSON answer)',
    upstreamPath: '/mcp',
    body: request('tools/list', {}),
    check(status, contentType, text, tools) {
      const [answer] = messagesOf(contentType, text) as Message[];
      const listed = answer?.result?.tools?.length;
      return status === 200 && listed === tools ? undefined : `expected ${tools} tools, got ${listed ?? 'no list'}`;
    },
  },
  {
    id: 'sse',
    label: `tools/call with ${PROGRESS_STEPS} progress events (SSE answer)`,
    upstreamPath: '/mcp-sse',
    body: request('tools/call', { name: PROGRESS_TOOL, arguments: { steps: PROGRESS_STEPS }, _meta: { progressToken: 'bench' } }),
    check(status, contentType, text) {
      if (status !== 200 || !contentType.startsWith('text/event-stream')) return `expected an SSE answer, got ${status} ${contentType}`;
      const messages = messagesOf(contentType, text) as Message[];
      const progress = messages.filter((m) => m.method === 'notifications/progress').length;
      const done = messages.some((m) => Array.isArray(m.result?.content) && m.result.isError !== true);
      return progress === PROGRESS_STEPS && done ? undefined : `expected ${PROGRESS_STEPS} progress events and a result, got ${progress} and ${done ? 'a' : 'no'} result`;
    },
  },
];

/** Where the load goes and with which headers (no authorization for the unauthenticated rows). */
export interface Endpoint {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
}

export function mcpHeaders(token: string | undefined, sessionId?: string): Record<string, string> {
  return {
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    accept: 'application/json, text/event-stream',
    'content-type': 'application/json',
    'mcp-protocol-version': PROTOCOL_VERSION,
    ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
  };
}

async function post(url: string, headers: Record<string, string>, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
}

/** initialize + notifications/initialized through `url`; returns the Mcp-Session-Id. */
export async function openSession(url: string, token: string | undefined): Promise<string> {
  const initialize = await post(url, mcpHeaders(token), {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'mcp-auth-gateway-bench', version: '1' } },
  });
  const text = await initialize.text();
  if (initialize.status !== 200) throw new Error(`initialize via ${url} answered ${initialize.status}: ${text}`);
  const sessionId = initialize.headers.get('mcp-session-id');
  if (!sessionId) throw new Error(`initialize via ${url} answered without Mcp-Session-Id`);

  const initialized = await post(url, mcpHeaders(token, sessionId), { jsonrpc: '2.0', method: 'notifications/initialized' });
  await initialized.text();
  if (initialized.status !== 202) throw new Error(`notifications/initialized via ${url} answered ${initialized.status}`);
  return sessionId;
}

/** One measured request, checked for real before any load: a benchmark of refusals would look fast. */
export async function assertWorkloadWorks(endpoint: Endpoint, workload: Workload, tools: number): Promise<void> {
  const response = await fetch(endpoint.url, { method: 'POST', headers: { ...endpoint.headers }, body: workload.body.replaceAll('[<id>]', 'preflight') });
  const text = await response.text();
  let problem: string | undefined;
  try {
    problem = workload.check(response.status, response.headers.get('content-type') ?? '', text, tools);
  } catch (error) {
    problem = `unreadable answer (${(error as Error).message})`;
  }
  if (problem) throw new Error(`${workload.id} via ${endpoint.url}: ${problem}; answered ${response.status}: ${text.slice(0, 500)}`);
}
