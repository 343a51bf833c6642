import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * Request headers an MCP upstream needs (Streamable HTTP: Accept, Content-Type, Mcp-Session-Id,
 * MCP-Protocol-Version, Last-Event-ID), plus harmless context (User-Agent, trace context).
 * Everything else is dropped: the client's credentials (MCP authorization §Access Token
 * Privilege Restriction: no token passthrough), cookies, hop-by-hop headers, and any header an
 * upstream might trust for identity (X-Forwarded-User…) or read under another spelling
 * (CGI-style servers read `Mcp_Session_Id` as `Mcp-Session-Id`, which the gateway never checked).
 * Routes may name more with `forwardHeaders`.
 */
export const FORWARDED_REQUEST_HEADERS: readonly string[] = [
  'accept',
  'mcp-session-id',
  'mcp-protocol-version',
  // 2026-07-28 §Standard Headers: mirrored from the body (and checked against it first).
  'mcp-method',
  'mcp-name',
  'last-event-id',
  'user-agent',
  'traceparent',
  'tracestate',
];

/** RFC 9110 §7.6.1: meaningful for one connection only, never relayed back. */
const HOP_BY_HOP = new Set([
  'connection', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate',
]);

/**
 * The head sent upstream, as name/value pairs: the client's allowed headers, the body's own
 * Content-Type and Content-Length, the gateway's headers and Host. Pairs, not an object: given an
 * object, node:http copies each header into a header map (setHeader) that it keeps for as long as
 * the request lives (an open stream's whole life); given pairs, it writes the head at once, each
 * header still validated. Built in one pass, since every forwarded request pays for it.
 */
export function upstreamHeaderLines(
  incoming: IncomingHttpHeaders,
  allowed: ReadonlySet<string>,
  body: Buffer | undefined,
  gatewayHeaders: Readonly<Record<string, string>>,
  host: string,
  paramHeaders = true,
): string[] {
  const lines: string[] = [];
  for (const name of allowed) {
    // The gateway's own headers win over a client copy. Config validation already keeps them
    // apart (forwardHeaders may not name them); this holds even if it did not.
    if (!Object.hasOwn(gatewayHeaders, name)) pushHeader(lines, name, incoming[name]);
  }
  // 2026-07-28 §Custom Headers: intermediaries MUST forward the Mcp-Param-* headers tools declare.
  // In any other version there are none to look for (the session stage dropped them).
  if (paramHeaders) {
    for (const name in incoming) {
      if (name.startsWith('mcp-param-') && !allowed.has(name) && !Object.hasOwn(gatewayHeaders, name)) pushHeader(lines, name, incoming[name]);
    }
  }
  if (body !== undefined) {
    // The body was checked as UTF-8 JSON; say exactly that, whatever parameters the client sent.
    lines.push('content-type', 'application/json', 'content-length', String(body.length));
  }
  for (const name in gatewayHeaders) lines.push(name, gatewayHeaders[name]!);
  lines.push('host', host);
  return lines;
}

/**
 * Only a string (or strings) is a header: an absent one reads undefined, and since Node's header
 * object is an ordinary object, a configured name such as `constructor` reads an inherited value.
 */
function pushHeader(lines: string[], name: string, value: unknown): void {
  if (typeof value === 'string') lines.push(name, value);
  else if (Array.isArray(value)) for (const one of value) if (typeof one === 'string') lines.push(name, one);
}

/**
 * The gateway is the resource server: an upstream's own challenge would send the client to the
 * wrong metadata, so it never reaches the client.
 */
const NEVER_TO_CLIENT = new Set(['www-authenticate']);

export function clientResponseHeaders(upstream: IncomingHttpHeaders): OutgoingHttpHeaders {
  // Headers the Connection header names are hop-by-hop too (RFC 9110 §7.6.1); the usual values
  // name none beyond the set above.
  const connection = upstream.connection;
  const named = connection === undefined || connection === 'keep-alive' || connection === 'close' ? undefined : new Set(connection.split(',').map((t) => t.trim().toLowerCase()));
  const headers: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    const value = upstream[name];
    if (value === undefined || HOP_BY_HOP.has(name) || NEVER_TO_CLIENT.has(name) || named?.has(name)) continue;
    headers[name] = value;
  }
  return headers;
}


