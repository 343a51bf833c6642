import type { ServerResponse } from 'node:http';

/**
 * CORS for browser-based MCP clients on the MCP endpoints. Only origins that pass the Origin
 * check (publicUrl's and `allowedOrigins`) get CORS headers, so a page elsewhere can neither
 * call the endpoint nor read an answer. The headers a client must read to follow the protocol
 * are exposed: the challenge (WWW-Authenticate, MCP authorization §Protected Resource Metadata
 * Discovery) and the session id (Streamable HTTP §Session Management).
 */
const EXPOSED = 'WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version, Retry-After, X-Request-Id';
const ALLOWED_METHODS = 'GET, POST, DELETE';
const ALLOWED_HEADERS = ['authorization', 'content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'dpop', 'mcp-method', 'mcp-name'];
const PREFLIGHT_MAX_AGE_SECONDS = '600';

/** Adds the CORS headers of an actual request (origin already checked). */
export function allowOrigin(res: ServerResponse, origin: string): void {
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('access-control-expose-headers', EXPOSED);
  res.setHeader('vary', 'Origin');
}

/** The headers answering a preflight from an allowed origin: methods and headers the endpoint takes. */
export function preflightHeaders(origin: string, extraHeaders: Iterable<string>, requested: string | undefined): Record<string, string> {
  // 2026-07-28 Mcp-Param-* names depend on the tool: the ones asked for are allowed by name.
  const params = (requested ?? '').split(',').map((name) => name.trim().toLowerCase()).filter((name) => /^mcp-param-[a-z0-9-]{1,64}$/.test(name));
  const headers = [...new Set([...ALLOWED_HEADERS, ...extraHeaders, ...params])].join(', ');
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': ALLOWED_METHODS,
    'access-control-allow-headers': headers,
    'access-control-max-age': PREFLIGHT_MAX_AGE_SECONDS,
    vary: 'Origin',
  };
}
