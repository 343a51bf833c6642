/** The benchmark's MCP traffic: session setup, the measured request, and a correctness check. */

export const PROTOCOL_VERSION = '2025-06-18';
export const TOOL_NAME = 'list_todos';

/** Where the load goes and with which headers (no authorization for the unauthenticated rows). */
export interface Endpoint {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * The measured request: a small tools/call. autocannon's idReplacement puts a fresh id in place of
 * `[<id>]` on every request: connections share one session, and the SDK upstream pairs answers
 * with concurrent requests of a session by JSON-RPC id, so ids must never repeat in flight.
 */
export const TOOL_CALL_BODY = JSON.stringify({
  jsonrpc: '2.0',
  id: '[<id>]',
  method: 'tools/call',
  params: { name: TOOL_NAME, arguments: {} },
});

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

/**
 * One measured request, checked for real: HTTP 200 alone would also cover a JSON-RPC error
 * (an "Unknown tool" answer is 200 too), which would benchmark a refusal instead of a call.
 */
export async function assertToolCallWorks(endpoint: Endpoint): Promise<void> {
  const response = await fetch(endpoint.url, {
    method: 'POST',
    headers: { ...endpoint.headers },
    body: TOOL_CALL_BODY.replace('[<id>]', 'preflight'),
  });
  const text = await response.text();
  let answer: { result?: { content?: unknown[]; isError?: boolean }; error?: unknown } | undefined;
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    // reported below
  }
  const ok = response.status === 200 && Array.isArray(answer?.result?.content) && answer.result.isError !== true;
  if (!ok) throw new Error(`tools/call ${TOOL_NAME} via ${endpoint.url} answered ${response.status}: ${text.slice(0, 500)}`);
}
