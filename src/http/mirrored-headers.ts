import type { IncomingHttpHeaders } from 'node:http';
import { Refusal } from '../errors.js';
import { headerValue } from './headers.js';
import { requestIdsOf, type McpBody } from '../mcp/message.js';
import { asSupportedVersion, isStateless, STATELESS_VERSIONS, type ProtocolVersion } from '../mcp/protocol.js';

/** MCP 2026-07-28 §Standard Headers: a value that is not plain ASCII is sent as `=?base64?…?=`. */
const BASE64_SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The header's value as the body would hold it; undefined when it is not a valid encoding. */
export function decodeHeaderValue(value: string): string | undefined {
  const encoded = BASE64_SENTINEL.exec(value);
  if (!encoded) {
    // A plain value is visible ASCII and spaces only (Node has already trimmed the ends).
    // A value not wrapped whole in the sentinel (`=?base64?SGVsbG8=`, no closing `?=`) is taken
    // literally (MCP 2026-07-28 §Standard Headers; the conformance suite's SEP-2243 checks).
    return /^[\x20-\x7e]*$/.test(value) ? value : undefined;
  }
  const bytes = Buffer.from(encoded[1]!, 'base64');
  // Buffer ignores what is not base64: re-encoding must give the same text, or it was not canonical.
  if (bytes.toString('base64') !== encoded[1]) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Which body field Mcp-Name mirrors, per method (Streamable HTTP 2026-07-28 §Standard Headers). */
function mirroredName(body: McpBody): { method: string; name?: string } | undefined {
  const message = body.messages[0];
  if (!message || message.kind === 'response') return undefined;
  switch (message.policy.kind) {
    case 'tool-call':
      return { method: message.method, name: message.policy.tool };
    case 'prompt':
      return { method: message.method, name: message.policy.name };
    case 'resource':
      return message.method === 'resources/read' ? { method: message.method, name: message.policy.uri } : { method: message.method };
    default:
      return { method: message.method };
  }
}

/** A mismatch refused, answering each of the body's requests (built only when one is found). */
function mismatch(body: McpBody, text: string): Refusal {
  return new Refusal('header_mismatch', `Header mismatch: ${text}`, { rpcIds: requestIdsOf(body) });
}

/**
 * The 2026-07-28 rules that let intermediaries route on headers: the version header matches
 * the body's `_meta` version, Mcp-Method matches the method, and Mcp-Name the tool or prompt
 * name or the resource URI. A mismatch or a missing header is refused (400, HeaderMismatch) and
 * never forwarded: an upstream or a load balancer that routes on the header must not be told
 * something other than what the body asks. Policy is decided from the body, never the headers.
 * A body naming a stateless version under an older (or no) version header is refused too: it
 * would otherwise slip past the checks its version requires.
 */
export function checkMirroredHeaders(headers: IncomingHttpHeaders, headerVersion: ProtocolVersion, body: McpBody): void {
  const message = body.messages[0];
  const metaVersion = body.metaVersion;
  // A version the gateway does not know, under an older or no version header: its rules cannot
  // be checked, so it is not forwarded. (Under a 2026-07-28 header, a different one is a mismatch.)
  if (!isStateless(headerVersion) && metaVersion !== undefined && asSupportedVersion(metaVersion) === undefined) {
    throw new Refusal('unsupported_protocol_version_error', `Unsupported protocol version: ${metaVersion.slice(0, 40)}`, {
      rpcIds: requestIdsOf(body),
      ...(body.isBatch ? { batch: true } : {}),
      data: { supported: STATELESS_VERSIONS, requested: metaVersion.slice(0, 256) },
    });
  }
  if (!isStateless(headerVersion)) {
    const named = asSupportedVersion(metaVersion);
    if (named !== undefined && isStateless(named)) {
      throw mismatch(body, `MCP-Protocol-Version header is required and must be '${named}' for this request`);
    }
    return;
  }
  if (!message || message.kind === 'response') return;
  if (message.kind === 'request') {
    if (metaVersion === undefined) {
      throw new Refusal('invalid_request_meta', `Invalid params: _meta["io.modelcontextprotocol/protocolVersion"] is required in protocol version ${headerVersion}`, { rpcIds: [message.id] });
    }
    if (metaVersion !== headerVersion) throw mismatch(body, `MCP-Protocol-Version header value '${headerVersion}' does not match the body's _meta version`);
  }
  const mirrored = mirroredName(body);
  if (!mirrored) return;
  const method = headerValue(headers, 'mcp-method');
  // Header requirements for notification POSTs are not defined in 2026-07-28: checked when sent.
  if (method === undefined && message.kind === 'request') throw mismatch(body, 'Mcp-Method header is required');
  if (method !== undefined && decodeHeaderValue(method) !== mirrored.method) throw mismatch(body, 'Mcp-Method header value does not match body method');
  const name = headerValue(headers, 'mcp-name');
  if (mirrored.name !== undefined) {
    if (name === undefined) throw mismatch(body, 'Mcp-Name header is required');
    if (decodeHeaderValue(name) !== mirrored.name) throw mismatch(body, 'Mcp-Name header value does not match body value');
  }
  checkParamHeaders(headers, message.policy.kind === 'tool-call' ? (message.policy.arguments ?? {}) : {}, body);
}

/**
 * Mcp-Param-* headers mirror tool arguments a tool's schema marks (Streamable HTTP 2026-07-28
 * §Custom Headers); the gateway does not know that mapping, so each header's value must be the
 * value of some top-level argument of the call. An upstream or router acting on the header then
 * acts on a value the policy saw in the body, never on one it did not judge.
 */
function checkParamHeaders(headers: IncomingHttpHeaders, args: Readonly<Record<string, unknown>>, body: McpBody): void {
  let values: Set<string> | undefined;
  for (const header in headers) {
    if (!header.startsWith('mcp-param-')) continue;
    values ??= new Set(Object.values(args).flatMap((value) => (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? [String(value)] : [])));
    const decoded = decodeHeaderValue(headerValue(headers, header) ?? '');
    if (decoded === undefined || !values.has(decoded)) throw mismatch(body, `${header} header value does not match any argument in the body`);
  }
}

/** Mirrored headers mean something only in 2026-07-28: in any other version they are not forwarded. */
export function dropMirroredHeaders(headers: IncomingHttpHeaders): void {
  delete headers['mcp-method'];
  delete headers['mcp-name'];
  for (const header in headers) if (header.startsWith('mcp-param-')) delete headers[header];
}
