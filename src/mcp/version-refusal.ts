import { Refusal, type RequestId } from '../errors.js';
import { META_PROTOCOL_VERSION } from './message.js';
import { STATELESS_VERSIONS } from './protocol.js';

/**
 * The answer to a request whose version the gateway does not support, with the id of each request
 * in its body so the client can tell which call failed. A body that names its version in `_meta`
 * speaks the 2026-07-28 way and gets that version's UnsupportedProtocolVersionError (-32022, with
 * the versions supported and the one requested: MCP 2026-07-28 basic §Protocol Version); any other
 * gets the 400 of Streamable HTTP §Protocol Version Header (2025-06-18 and later).
 *
 * The body is read leniently here (it is refused whatever it holds): only ids and whether it
 * names a version in `_meta` are looked for.
 */
export function unsupportedVersionRefusal(requested: string, body: Buffer | undefined): Refusal {
  const { messages, isBatch } = lenientMessages(body);
  const rpcIds = messages.flatMap((message) => (isRequestId(message.id) && typeof message.method === 'string' ? [message.id] : []));
  // A batch, even of one, is answered with an array (JSON-RPC 2.0 §6).
  const ids = rpcIds.length > 0 ? { rpcIds, ...(isBatch ? { batch: true } : {}) } : {};
  const shown = requested.length > 40 ? `${requested.slice(0, 40)}…` : requested;
  if (messages.some(namesMetaVersion)) {
    return new Refusal('unsupported_protocol_version_error', `Unsupported protocol version: ${shown}`, {
      ...ids,
      data: { supported: STATELESS_VERSIONS, requested: requested.slice(0, 256) },
    });
  }
  return new Refusal('unsupported_protocol_version', `Unsupported MCP-Protocol-Version: ${shown}`, ids);
}

type LooseMessage = Record<string, unknown>;

function lenientMessages(body: Buffer | undefined): { messages: LooseMessage[]; isBatch: boolean } {
  if (body === undefined) return { messages: [], isBatch: false };
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return { messages: [], isBatch: false };
  }
  const messages = (Array.isArray(json) ? json : [json]).filter((message): message is LooseMessage => typeof message === 'object' && message !== null && !Array.isArray(message));
  return { messages, isBatch: Array.isArray(json) };
}

function metaOf(message: LooseMessage): Record<string, unknown> | undefined {
  const params = message.params;
  if (typeof params !== 'object' || params === null) return undefined;
  const meta = (params as Record<string, unknown>)._meta;
  return typeof meta === 'object' && meta !== null ? (meta as Record<string, unknown>) : undefined;
}

function namesMetaVersion(message: LooseMessage): boolean {
  const meta = metaOf(message);
  return meta !== undefined && META_PROTOCOL_VERSION in meta;
}

function isRequestId(id: unknown): id is RequestId {
  return typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id));
}
