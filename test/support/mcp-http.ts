/** Raw MCP streamable-HTTP requests, so every status and header stays visible to the test. */

export const PROTOCOL_VERSION = '2025-06-18';

export const initializeRequest = (id: number | string = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'raw-test', version: '1' } },
});

export const toolCall = (id: number | string, name: string, args: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args },
});

export interface McpRequestOptions {
  readonly token: string;
  readonly sessionId?: string;
  readonly method?: 'POST' | 'GET' | 'DELETE';
  readonly signal?: AbortSignal;
}

export function mcpRequest(url: string, body: unknown, options: McpRequestOptions): Promise<Response> {
  const method = options.method ?? 'POST';
  return fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${options.token}`,
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': PROTOCOL_VERSION,
      ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
      ...(options.sessionId ? { 'mcp-session-id': options.sessionId } : {}),
    },
    ...(method === 'POST' ? { body: JSON.stringify(body) } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** Initializes a session (initialize + notifications/initialized) and returns its id. */
export async function openSession(url: string, token: string): Promise<string> {
  const response = await mcpRequest(url, initializeRequest(), { token });
  await response.text();
  if (response.status !== 200) throw new Error(`initialize answered ${response.status}`);
  const sessionId = response.headers.get('mcp-session-id');
  if (!sessionId) throw new Error('initialize answered without Mcp-Session-Id');
  const initialized = await mcpRequest(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { token, sessionId });
  await initialized.text();
  if (initialized.status !== 202) throw new Error(`notifications/initialized answered ${initialized.status}`);
  return sessionId;
}
