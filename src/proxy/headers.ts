import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1: meaningful for one connection only, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate',
]);

/**
 * Request headers never sent upstream: the client's credentials (MCP authorization
 * §Access Token Privilege Restriction: no token passthrough), and accept-encoding, because the
 * gateway must be able to read (and filter) what the upstream answers.
 */
const NEVER_UPSTREAM = new Set(['authorization', 'accept-encoding', 'content-length', 'host', 'cookie']);

function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const connection = headers.connection;
  if (!connection) return new Set();
  return new Set(connection.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, bodyLength: number | undefined): IncomingHttpHeaders {
  const named = connectionTokens(incoming);
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (HOP_BY_HOP.has(name) || NEVER_UPSTREAM.has(name) || named.has(name)) continue;
    headers[name] = value;
  }
  if (bodyLength !== undefined) headers['content-length'] = String(bodyLength);
  return headers;
}

export function clientResponseHeaders(upstream: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = connectionTokens(upstream);
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (HOP_BY_HOP.has(name) || named.has(name) || value === undefined) continue;
    headers[name] = value;
  }
  return headers;
}
