import { Refusal, type JsonRpcId, type RequestId } from '../errors.js';
import { allowsBatches, asSupportedVersion, isStateless, isVisibleAscii, REMOVED_IN_STATELESS, type ProtocolVersion } from './protocol.js';
import { findDuplicateKey } from './strict-json.js';

/** The part of an MCP message a policy decides on: parsed once here, so a policy never sees raw bytes. */
export type PolicyRequest =
  | { readonly kind: 'tool-call'; readonly tool: string; readonly arguments?: Readonly<Record<string, unknown>> }
  /** resources/read, resources/subscribe, resources/unsubscribe. */
  | { readonly kind: 'resource'; readonly method: string; readonly uri: string }
  | { readonly kind: 'prompt'; readonly name: string }
  /** 2026-07-28 subscriptions/listen: the method's rule, then each subscribed resource as a read. */
  | { readonly kind: 'listen'; readonly uris: readonly string[] }
  /**
   * completion/complete: the method's rule, then a read of what it completes for, the prompt
   * (`ref/prompt`) or the resource template (`ref/resource`): completions reveal its values.
   */
  | { readonly kind: 'completion'; readonly ref: CompletionRef }
  | { readonly kind: 'other'; readonly method: string };

/** What a completion/complete request completes an argument of. */
export type CompletionRef = { readonly kind: 'prompt'; readonly name: string } | { readonly kind: 'resource-template'; readonly uri: string };

/** A client-to-server JSON-RPC message, parsed once; policy and filtering never see raw bytes. */
export type McpMessage =
  | { readonly kind: 'request'; readonly id: string | number; readonly method: string; readonly policy: PolicyRequest }
  | { readonly kind: 'notification'; readonly method: string; readonly policy: PolicyRequest }
  /** A client's answer to a server-initiated request (sampling, elicitation, roots). */
  | { readonly kind: 'response'; readonly id: JsonRpcId };

export interface McpBody {
  readonly messages: readonly McpMessage[];
  readonly isBatch: boolean;
  /** The protocol version an `initialize` request in the body asks for, if any. */
  readonly initializeVersion?: string;
  /** 2026-07-28: the version a lone message names in `params._meta` (io.modelcontextprotocol/protocolVersion). */
  readonly metaVersion?: string;
  /** 2026-07-28 (SEP-414): W3C trace context a lone message carries in `params._meta`. */
  readonly metaTrace?: { readonly traceparent?: string; readonly tracestate?: string };
  /**
   * 2026-07-28: a lone request declares URL-mode elicitation in its `_meta` client capabilities
   * (`elicitation.url`), so an input-required result may ask it for a URL elicitation.
   */
  readonly metaUrlElicitation?: true;
}

/** MCP 2026-07-28 §Requests: the per-request `_meta` key naming the protocol version. */
export const META_PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';

/** Ids of the body's requests: each must be answered, with an error if the body is refused. */
export function requestIdsOf(body: McpBody | undefined): RequestId[] {
  const ids: RequestId[] = [];
  if (body) for (const message of body.messages) if (message.kind === 'request') ids.push(message.id);
  return ids;
}

// fatal: invalid UTF-8 is refused, never replaced by U+FFFD (the policy would see another name
// than the upstream gets). ignoreBOM keeps a BOM, which JSON.parse then refuses, as it must.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses a POST body strictly: valid UTF-8 JSON, no duplicate keys, JSON-RPC 2.0 shapes, and a
 * batch only where the protocol version still allows one.
 */
export function parseMcpBody(bytes: Buffer, version: ProtocolVersion): McpBody {
  let json: unknown;
  let text: string;
  try {
    text = utf8.decode(bytes);
    json = JSON.parse(text);
  } catch {
    throw new Refusal('parse_error', 'Parse error: request body is not valid UTF-8 JSON');
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) throw withIdsOf(json, new Refusal('invalid_message', 'Invalid Request: duplicate key in JSON object'));

  if (Array.isArray(json)) {
    // A batch where batches do not exist is not a request: one error, without an id.
    if (!allowsBatches(version)) throw new Refusal('batch_not_supported', `Invalid Request: JSON-RPC batches are not supported in protocol version ${version}`);
    if (json.length === 0) throw new Refusal('invalid_message', 'Invalid Request: empty batch');
    let messages: McpMessage[];
    try {
      messages = json.map((element) => toMessage(element, version));
    } catch (error) {
      throw withIdsOf(json, error);
    }
    return { messages, isBatch: true, initializeVersion: initializeVersionOf(json), ...metaVersionsOf(json) };
  }
  let message: McpMessage;
  try {
    message = toMessage(json, version);
  } catch (error) {
    throw withIdsOf(json, error);
  }
  // Streamable HTTP 2026-07-28 §Sending Messages: the body is one request or notification; the
  // client sends no responses (servers send no requests to answer).
  if (isStateless(version) && message.kind === 'response') throw invalid(`JSON-RPC responses are not sent in protocol version ${version}`);
  const lone = [json];
  const meta = metaOf(json);
  // Without `_meta` (every message before 2026-07-28) there is nothing of it to copy in.
  if (meta === undefined) return { messages: [message], isBatch: false, initializeVersion: initializeVersionOf(lone) };
  return { messages: [message], isBatch: false, initializeVersion: initializeVersionOf(lone), ...metaVersionsOf(lone), ...metaTraceOf(meta), ...metaUrlElicitationOf(meta) };
}

/**
 * The `_meta` versions the body's messages name. Every element of a batch counts: a 2026-07-28
 * message second in a header-less batch must meet the header checks as a lone one does.
 */
function metaVersionsOf(messages: readonly unknown[]): Pick<McpBody, 'metaVersion'> {
  let first: string | undefined;
  let unsupported: string | undefined;
  for (const message of messages) {
    const version = metaVersionOf(message);
    if (version === undefined) continue;
    // One naming a stateless version wins: it is the one whose rules must not be skipped; then
    // one the gateway does not know, which is refused.
    const supported = asSupportedVersion(version);
    if (supported !== undefined && isStateless(supported)) return { metaVersion: version };
    if (supported === undefined) unsupported ??= version;
    first ??= version;
  }
  const named = unsupported ?? first;
  return named === undefined ? {} : { metaVersion: named };
}

/**
 * A refusal of a parsed body answers the requests it can name (JSON-RPC 2.0 §5: the response
 * carries the request's id), so the client can tell which call failed; in a batch, every
 * request with a usable id gets the error.
 */
function withIdsOf(json: unknown, error: unknown): unknown {
  if (!(error instanceof Refusal) || error.details.rpcIds !== undefined) return error;
  const ids = (Array.isArray(json) ? json : [json]).flatMap((message) => {
    const id = isObject(message) && typeof message.method === 'string' ? message.id : undefined;
    return typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id)) ? [id] : [];
  });
  if (ids.length === 0) return error;
  return new Refusal(error.code, error.message, { ...error.details, rpcIds: ids, ...(Array.isArray(json) ? { batch: true } : {}) });
}

/** Trace context in `params._meta` (SEP-414: `traceparent`, `tracestate`), strings of a sane length only. */
function metaTraceOf(meta: Record<string, unknown> | undefined): Pick<McpBody, 'metaTrace'> {
  if (meta === undefined) return {};
  const { traceparent, tracestate } = meta;
  if (typeof traceparent !== 'string' || traceparent.length > 64) return {};
  return { metaTrace: { traceparent, ...(typeof tracestate === 'string' && tracestate.length <= 512 ? { tracestate } : {}) } };
}

/** MCP 2026-07-28 §Requests: the per-request `_meta` key holding the client's capabilities. */
const META_CLIENT_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';

function metaUrlElicitationOf(meta: Record<string, unknown> | undefined): Pick<McpBody, 'metaUrlElicitation'> {
  const capabilities = meta?.[META_CLIENT_CAPABILITIES];
  return isObject(capabilities) && isObject(capabilities.elicitation) && isObject(capabilities.elicitation.url) ? { metaUrlElicitation: true } : {};
}

function metaVersionOf(message: unknown): string | undefined {
  const version = metaOf(message)?.[META_PROTOCOL_VERSION];
  return typeof version === 'string' ? version : undefined;
}

/** A message's `params._meta`, when it has one. */
function metaOf(message: unknown): Record<string, unknown> | undefined {
  return isObject(message) && isObject(message.params) && isObject(message.params._meta) ? message.params._meta : undefined;
}

function initializeVersionOf(messages: readonly unknown[]): string | undefined {
  for (const message of messages) {
    if (isObject(message) && message.method === 'initialize' && isObject(message.params) && typeof message.params.protocolVersion === 'string') {
      return message.params.protocolVersion;
    }
  }
  return undefined;
}

function toMessage(value: unknown, version: ProtocolVersion): McpMessage {
  if (!isObject(value) || value.jsonrpc !== '2.0') throw invalid('not a JSON-RPC 2.0 message');
  const { id, method } = value;
  if (typeof method === 'string') {
    checkMethodName(method);
    // Refused before its params are read: the method does not exist in this version at all.
    if (isStateless(version) && REMOVED_IN_STATELESS.has(method)) throw new Refusal('method_denied_not_found', `Method not found: ${method}`);
    const policy = policyRequest(method, value.params);
    if (id === undefined) return { kind: 'notification', method, policy };
    // MCP §Requests: the ID MUST be a string or integer and MUST NOT be null.
    if (typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id))) return { kind: 'request', id, method, policy };
    throw invalid('request id must be a string or an integer');
  }
  if (method !== undefined) throw invalid('method must be a string');
  if (('result' in value || 'error' in value) && (typeof id === 'string' || typeof id === 'number' || id === null)) {
    return { kind: 'response', id };
  }
  throw invalid('neither a request, a notification nor a response');
}

/**
 * Method names are case-sensitive (JSON-RPC 2.0 §2, Conventions). A variant of a standard method
 * ("Tools/Call", "TOOLS/LIST", "tools/call ") would be another method to the policy, but a
 * lenient upstream might run it as the real one and so skip the tool rules or the list filter:
 * such variants are refused outright.
 */
const STANDARD_METHODS = new Map(
  [
    'initialize', 'ping', 'tools/list', 'tools/call', 'resources/list', 'resources/templates/list',
    'resources/read', 'resources/subscribe', 'resources/unsubscribe', 'prompts/list', 'prompts/get',
    'completion/complete', 'logging/setLevel', 'tasks/get', 'tasks/list', 'tasks/result', 'tasks/cancel',
    'server/discover', 'subscriptions/listen',
  ].map((method) => [method.toLowerCase(), method]),
);

function checkMethodName(method: string): void {
  if (!isVisibleAscii(method)) throw invalid('method names are visible ASCII without spaces');
  const standard = STANDARD_METHODS.get(method.toLowerCase());
  if (standard !== undefined && standard !== method) throw invalid(`unknown method ${method}`);
}

/** MCP 2025-11-25 §Tool Names: SHOULD be 1-128 characters; far longer ones are refused. */
export const MAX_TOOL_NAME_LENGTH = 256;

const RESOURCE_METHODS = new Set(['resources/read', 'resources/subscribe', 'resources/unsubscribe']);

function policyRequest(method: string, params: unknown): PolicyRequest {
  if (RESOURCE_METHODS.has(method)) {
    const uri = isObject(params) ? params.uri : undefined;
    if (typeof uri !== 'string' || uri === '') throw invalid(`${method} needs params.uri as a string`);
    return { kind: 'resource', method, uri };
  }
  if (method === 'prompts/get') {
    const name = isObject(params) ? params.name : undefined;
    if (typeof name !== 'string' || name === '') throw invalid('prompts/get needs params.name as a string');
    return { kind: 'prompt', name };
  }
  if (method === 'subscriptions/listen') return { kind: 'listen', uris: resourceSubscriptionsOf(params) };
  if (method === 'completion/complete') return { kind: 'completion', ref: completionRefOf(params) };
  if (method !== 'tools/call') return { kind: 'other', method };
  const name = isObject(params) ? params.name : undefined;
  if (typeof name !== 'string') throw invalid('tools/call needs params.name as a string');
  if (name.length === 0 || name.length > MAX_TOOL_NAME_LENGTH) throw invalid(`tool names are 1 to ${MAX_TOOL_NAME_LENGTH} characters`);
  const args = isObject(params) ? params.arguments : undefined;
  return { kind: 'tool-call', tool: name, ...(isObject(args) ? { arguments: args } : {}) };
}

/**
 * The resources a 2026-07-28 listen stream subscribes to (params.notifications.resourceSubscriptions):
 * each is authorised like a read, so no stream carries updates about a resource the principal may not see.
 */
function resourceSubscriptionsOf(params: unknown): string[] {
  const notifications = isObject(params) ? params.notifications : undefined;
  if (notifications === undefined) return [];
  if (!isObject(notifications)) throw invalid('subscriptions/listen needs params.notifications as an object');
  const uris = notifications.resourceSubscriptions;
  if (uris === undefined) return [];
  if (!Array.isArray(uris) || !uris.every((uri) => typeof uri === 'string' && uri !== '')) {
    throw invalid('subscriptions/listen needs notifications.resourceSubscriptions as a list of URIs');
  }
  return uris as string[];
}

/**
 * What a completion/complete request completes for (MCP §Completion: `ref/prompt` with a name,
 * `ref/resource` with a URI or URI template). Anything else cannot be decided, so it is refused
 * rather than forwarded on the route's scopes alone.
 */
function completionRefOf(params: unknown): CompletionRef {
  const ref = isObject(params) ? params.ref : undefined;
  if (isObject(ref) && ref.type === 'ref/prompt' && typeof ref.name === 'string' && ref.name !== '') return { kind: 'prompt', name: ref.name };
  if (isObject(ref) && ref.type === 'ref/resource' && typeof ref.uri === 'string' && ref.uri !== '') return { kind: 'resource-template', uri: ref.uri };
  throw invalid('completion/complete needs params.ref as {type: "ref/prompt", name} or {type: "ref/resource", uri}');
}

function invalid(why: string): Refusal {
  return new Refusal('invalid_message', `Invalid Request: ${why}`);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
