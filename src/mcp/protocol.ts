import { Refusal } from '../errors.js';

/**
 * Protocol revisions the gateway understands. Streamable HTTP §Protocol Version Header
 * (2025-06-18 and later): an invalid or unsupported MCP-Protocol-Version gets 400; without the
 * header the server assumes 2025-03-26.
 */
export const SUPPORTED_PROTOCOL_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25', '2026-07-28'] as const;
export type ProtocolVersion = (typeof SUPPORTED_PROTOCOL_VERSIONS)[number];
export const ASSUMED_PROTOCOL_VERSION: ProtocolVersion = '2025-03-26';

/**
 * The version a request speaks: its header; without one, the version of its session (the
 * spec's SHOULD: rely on what was negotiated), else 2025-03-26.
 */
export function parseProtocolVersionHeader(header: string | undefined, sessionVersion?: string): ProtocolVersion {
  if (header === undefined) return asSupportedVersion(sessionVersion) ?? ASSUMED_PROTOCOL_VERSION;
  const version = asSupportedVersion(header.trim());
  if (!version) throw new Refusal('unsupported_protocol_version', `Unsupported MCP-Protocol-Version: ${truncate(header)}`);
  return version;
}

export function asSupportedVersion(text: string | undefined): ProtocolVersion | undefined {
  return SUPPORTED_PROTOCOL_VERSIONS.find((v) => v === text);
}

/**
 * 2026-07-28 is stateless (changelog: no initialize handshake, no Mcp-Session-Id): the version
 * and capabilities travel in each request's `_meta`, and the request must mirror its method and
 * name in the Mcp-Method and Mcp-Name headers (Streamable HTTP 2026-07-28 §Standard Headers).
 */
export function isStateless(version: ProtocolVersion): boolean {
  return version === '2026-07-28';
}

/** The stateless versions: the ones a request naming its version in `_meta` may use. */
export const STATELESS_VERSIONS: readonly ProtocolVersion[] = SUPPORTED_PROTOCOL_VERSIONS.filter(isStateless);

/**
 * Request methods of the 2025 revisions that 2026-07-28 removed (its changelog: no initialize
 * handshake, no ping, logging level and resource subscriptions in `_meta` and the listen stream,
 * tasks as an extension that keeps only tasks/get and tasks/cancel). Sent in 2026-07-28 they are
 * answered 404 / -32601 (basic §Error Handling) with the request's id, whatever their params.
 */
export const REMOVED_IN_STATELESS: ReadonlySet<string> = new Set([
  'initialize', 'ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe', 'tasks/list', 'tasks/result',
]);

/** JSON-RPC batches were removed in 2025-06-18 (changelog: "Remove support for JSON-RPC batching"). */
export function allowsBatches(version: ProtocolVersion): boolean {
  return version === '2024-11-05' || version === '2025-03-26';
}

/** Longer than any id a real server mints (UUIDs are 36), short enough to be cheap to store. */
export const MAX_SESSION_ID_LENGTH = 256;

/** Streamable HTTP §Session Management: the session ID MUST only contain visible ASCII (0x21-0x7E). */
/** Only characters 0x21-0x7E: no spaces, no control characters, nothing beyond ASCII. */
export function isVisibleAscii(text: string): boolean {
  return /^[\x21-\x7e]+$/.test(text);
}

export function isValidSessionId(id: string): boolean {
  return id.length > 0 && id.length <= MAX_SESSION_ID_LENGTH && isVisibleAscii(id);
}

export function parseSessionIdHeader(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!isValidSessionId(header)) throw new Refusal('invalid_session_id', 'Invalid Mcp-Session-Id header');
  return header;
}

function truncate(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
