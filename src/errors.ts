/**
 * Every way the gateway refuses a request, as a closed set of codes. Code is decided by
 * `switch`, never by matching message text; tests assert on `code`. Each code carries the HTTP
 * status, the OAuth error (RFC 6750 §3.1) and the JSON-RPC error code it maps to, so one place
 * (`src/http/refusal.ts`) turns any refusal into a response.
 */
export type RefusalCode =
  | 'missing_token'
  | 'invalid_token'
  | 'invalid_dpop_proof'
  | 'insufficient_scope'
  /** The same, answered as a JSON-RPC error for clients that do not step up (routes[].stepUp). */
  | 'insufficient_scope_error'
  | 'issuer_unavailable'
  | 'origin_not_allowed'
  | 'method_not_allowed'
  | 'not_acceptable'
  | 'unsupported_media_type'
  | 'payload_too_large'
  /** More request headers than limits.maxHeaders (Node would drop the rest silently). */
  | 'too_many_headers'
  | 'parse_error'
  | 'invalid_message'
  | 'batch_not_supported'
  | 'unsupported_protocol_version'
  /** The same in 2026-07-28: UnsupportedProtocolVersionError, naming the versions supported. */
  | 'unsupported_protocol_version_error'
  /** 2026-07-28: a required header is missing or does not match the body. */
  | 'header_mismatch'
  /** 2026-07-28: a request without the `_meta` fields every request carries. */
  | 'invalid_request_meta'
  | 'invalid_session_id'
  | 'session_not_found'
  | 'tool_denied'
  | 'resource_denied'
  /** The same in 2026-07-28, which retired -32002 for -32602 (resources §Error Handling). */
  | 'resource_denied_invalid_params'
  | 'prompt_denied'
  | 'method_denied'
  /** The same in 2026-07-28, where an unknown method is answered 404 (basic §Error Handling). */
  | 'method_denied_not_found'
  | 'notification_denied'
  /** A resource URI (or template) not in the one form a policy can decide on (src/mcp/resource-uri.ts). */
  | 'invalid_resource_uri'
  | 'invalid_tool_call'
  | 'rate_limited'
  | 'store_unavailable'
  | 'upstream_unreachable'
  | 'upstream_timeout'
  /**
   * routes[].upstreamAuth: the IdP refused to exchange the client's token (or the upstream
   * refused the fresh one too): the client must authenticate again.
   */
  | 'upstream_credential_refused'
  /** routes[].upstreamAuth: the IdP could not be asked (down, slow, 5xx, or refusing the gateway itself). */
  | 'upstream_credential_unavailable'
  /** routes[].upstreamAuth static: the upstream refused the configured secret, read afresh, too. */
  | 'upstream_credential_rejected'
  /**
   * routes[].upstreamAuth connectedAccount: the user has not connected the account the upstream
   * needs; `details.elicitation` says where to connect it. Answered so where the request cannot
   * carry a URL elicitation (no request to answer, or a method without one).
   */
  | 'upstream_account_not_connected'
  /** The same, for a request of 2025-11-25 or earlier: URLElicitationRequiredError, -32042. */
  | 'url_elicitation_required'
  /** The same, for a 2026-07-28 tools/call, prompts/get or resources/read: an input-required result. */
  | 'input_required'
  /** 2026-07-28 MissingRequiredClientCapability (-32021): the answer needs a capability the request did not declare. */
  | 'missing_client_capability';

export type OAuthErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof';

export interface RefusalShape {
  readonly status: number;
  /** Present when the refusal is an OAuth bearer-token error and carries a challenge. */
  readonly oauthError?: OAuthErrorCode;
  /** Whether a `WWW-Authenticate: Bearer` challenge is sent (RFC 6750 §3, RFC 9728 §5.1). */
  readonly challenge: boolean;
  /** JSON-RPC 2.0 error code for the body. */
  readonly rpcCode: number;
}

export const JSONRPC_PARSE_ERROR = -32700;
export const JSONRPC_INVALID_REQUEST = -32600;
export const JSONRPC_METHOD_NOT_FOUND = -32601;
export const JSONRPC_INVALID_PARAMS = -32602;
/** MCP resources §Error Handling: resource not found. */
export const JSONRPC_RESOURCE_NOT_FOUND = -32002;
export const JSONRPC_INTERNAL_ERROR = -32603;
/** Implementation-defined server errors (JSON-RPC 2.0 §5.1 reserves -32000..-32099). */
export const JSONRPC_SERVER_ERROR = -32000;
export const JSONRPC_UNAUTHORIZED = -32001;
/** MCP 2026-07-28 HeaderMismatch (the spec's reserved range -32020..-32099). */
export const JSONRPC_HEADER_MISMATCH = -32020;
/** MCP 2026-07-28 UnsupportedProtocolVersionError, `data: { supported, requested }`. */
export const JSONRPC_UNSUPPORTED_PROTOCOL_VERSION = -32022;
/** MCP 2026-07-28 MissingRequiredClientCapability, `data: { requiredCapabilities }`. */
export const JSONRPC_MISSING_CLIENT_CAPABILITY = -32021;
/** MCP 2025-11-25 URLElicitationRequiredError (client/elicitation §Error Handling), `data: { elicitations }`. */
export const JSONRPC_URL_ELICITATION_REQUIRED = -32042;

export function refusalShape(code: RefusalCode): RefusalShape {
  switch (code) {
    case 'missing_token':
      // RFC 6750 §3.1: no error code when the request carried no credentials at all.
      return { status: 401, challenge: true, rpcCode: JSONRPC_UNAUTHORIZED };
    case 'invalid_token':
      return { status: 401, oauthError: 'invalid_token', challenge: true, rpcCode: JSONRPC_UNAUTHORIZED };
    case 'invalid_dpop_proof':
      // RFC 9449 §7.1: the error rides on the DPoP challenge; the Bearer one stays plain.
      return { status: 401, oauthError: 'invalid_dpop_proof', challenge: true, rpcCode: JSONRPC_UNAUTHORIZED };
    case 'insufficient_scope':
      return { status: 403, oauthError: 'insufficient_scope', challenge: true, rpcCode: JSONRPC_UNAUTHORIZED };
    case 'insufficient_scope_error':
      // No challenge: a client that cannot re-authorise is told, in the answer it reads, which
      // scopes to ask its operator for (error.data names them).
      return { status: 200, challenge: false, rpcCode: JSONRPC_UNAUTHORIZED };
    case 'issuer_unavailable':
      return { status: 503, challenge: false, rpcCode: JSONRPC_SERVER_ERROR };
    case 'origin_not_allowed':
      return { status: 403, challenge: false, rpcCode: JSONRPC_SERVER_ERROR };
    case 'method_not_allowed':
      return { status: 405, challenge: false, rpcCode: JSONRPC_SERVER_ERROR };
    case 'not_acceptable':
      return { status: 406, challenge: false, rpcCode: JSONRPC_SERVER_ERROR };
    case 'unsupported_media_type':
      return { status: 415, challenge: false, rpcCode: JSONRPC_SERVER_ERROR };
    case 'too_many_headers':
      // RFC 6585 §5: Request Header Fields Too Large.
      return { status: 431, challenge: false, rpcCode: JSONRPC_SERVER_ERROR };
    case 'payload_too_large':
      return { status: 413, challenge: false, rpcCode: JSONRPC_SERVER_ERROR };
    case 'parse_error':
      return { status: 400, challenge: false, rpcCode: JSONRPC_PARSE_ERROR };
    case 'invalid_message':
      return { status: 400, challenge: false, rpcCode: JSONRPC_INVALID_REQUEST };
    case 'batch_not_supported':
      return { status: 400, challenge: false, rpcCode: JSONRPC_INVALID_REQUEST };
    case 'unsupported_protocol_version':
      return { status: 400, challenge: false, rpcCode: JSONRPC_INVALID_REQUEST };
    case 'unsupported_protocol_version_error':
      return { status: 400, challenge: false, rpcCode: JSONRPC_UNSUPPORTED_PROTOCOL_VERSION };
    case 'header_mismatch':
      // Streamable HTTP 2026-07-28 §Standard Headers: 400 with the HeaderMismatch error.
      return { status: 400, challenge: false, rpcCode: JSONRPC_HEADER_MISMATCH };
    case 'invalid_request_meta':
      // MCP 2026-07-28 basic §Requests: malformed, -32602, HTTP 400.
      return { status: 400, challenge: false, rpcCode: JSONRPC_INVALID_PARAMS };
    case 'invalid_session_id':
      return { status: 400, challenge: false, rpcCode: JSONRPC_INVALID_REQUEST };
    case 'session_not_found':
      // Streamable HTTP §Session Management: 404 tells the client to start a new session.
      return { status: 404, challenge: false, rpcCode: JSONRPC_SERVER_ERROR };
    case 'tool_denied':
      // A denied tool answers exactly like a tool that does not exist (MCP tools §Error
      // Handling: unknown tool is -32602), so a refusal reveals nothing about what is hidden.
      return { status: 200, challenge: false, rpcCode: JSONRPC_INVALID_PARAMS };
    case 'resource_denied':
      // MCP resources §Error Handling: a resource that does not exist is -32002; a denied one
      // answers the same, so a refusal reveals nothing about what is hidden.
      return { status: 200, challenge: false, rpcCode: JSONRPC_RESOURCE_NOT_FOUND };
    case 'resource_denied_invalid_params':
      return { status: 200, challenge: false, rpcCode: JSONRPC_INVALID_PARAMS };
    case 'prompt_denied':
      // MCP prompts §Error Handling: an invalid prompt name is -32602.
      return { status: 200, challenge: false, rpcCode: JSONRPC_INVALID_PARAMS };
    case 'method_denied':
      return { status: 200, challenge: false, rpcCode: JSONRPC_METHOD_NOT_FOUND };
    case 'method_denied_not_found':
      return { status: 404, challenge: false, rpcCode: JSONRPC_METHOD_NOT_FOUND };
    case 'notification_denied':
      // Streamable HTTP §Sending Messages to the Server: input without requests that the server
      // does not accept gets an HTTP error status (there is no request to answer in JSON-RPC).
      return { status: 403, challenge: false, rpcCode: JSONRPC_INVALID_PARAMS };
    case 'invalid_resource_uri':
      // Answered as the server would answer invalid params it could not act on (in-band, 200).
      return { status: 200, challenge: false, rpcCode: JSONRPC_INVALID_PARAMS };
    case 'invalid_tool_call':
      return { status: 200, challenge: false, rpcCode: JSONRPC_INVALID_PARAMS };
    case 'rate_limited':
      // RFC 6585 §4: 429 with Retry-After; the body is a JSON-RPC error so MCP clients can show it.
      return { status: 429, challenge: false, rpcCode: JSONRPC_SERVER_ERROR };
    case 'store_unavailable':
      return { status: 503, challenge: false, rpcCode: JSONRPC_SERVER_ERROR };
    case 'upstream_unreachable':
      return { status: 502, challenge: false, rpcCode: JSONRPC_INTERNAL_ERROR };
    case 'upstream_timeout':
      return { status: 504, challenge: false, rpcCode: JSONRPC_INTERNAL_ERROR };
    case 'upstream_credential_refused':
      // RFC 6750 §3.1 invalid_token: the token cannot be used here any more; a fresh challenge
      // sends the client through its authorization again (MCP authorization §Error Handling).
      return { status: 401, oauthError: 'invalid_token', challenge: true, rpcCode: JSONRPC_UNAUTHORIZED };
    case 'upstream_credential_unavailable':
      // Not the client's fault: retry later (Retry-After).
      return { status: 503, challenge: false, rpcCode: JSONRPC_SERVER_ERROR };
    case 'upstream_credential_rejected':
      // The gateway's own credential is wrong: a bad gateway, and nothing the client can fix.
      return { status: 502, challenge: false, rpcCode: JSONRPC_INTERNAL_ERROR };
    case 'upstream_account_not_connected':
      // The client's token is fine (no challenge): the user has something to do elsewhere first.
      return { status: 403, challenge: false, rpcCode: JSONRPC_UNAUTHORIZED };
    case 'url_elicitation_required':
      // An answer to the request, in-band, as the upstream's own -32042 would be.
      return { status: 200, challenge: false, rpcCode: JSONRPC_URL_ELICITATION_REQUIRED };
    case 'input_required':
      // Not an error at all: the request's result (details.result), which asks for input.
      return { status: 200, challenge: false, rpcCode: 0 };
    case 'missing_client_capability':
      // Streamable HTTP 2026-07-28: MissingRequiredClientCapability is answered 400.
      return { status: 400, challenge: false, rpcCode: JSONRPC_MISSING_CLIENT_CAPABILITY };
  }
}

export type JsonRpcId = string | number | null;
/** The id of a request: JSON-RPC allows null, MCP does not (§Requests). */
export type RequestId = string | number;

/** Why a token was refused (invalid_token): a closed set for metrics and logs. */
export type TokenFailure =
  | 'malformed' | 'expired' | 'not-yet-valid' | 'signature' | 'algorithm' | 'audience' | 'issuer'
  | 'type' | 'claims' | 'inactive' | 'binding' | 'invalid';

export interface RefusalDetails {
  /** invalid_token only: which check failed. */
  readonly tokenFailure?: TokenFailure;
  /** Scopes the challenge asks for (insufficient_scope, and the 401 challenge). */
  readonly scope?: readonly string[];
  /** insufficient_scope: the scopes the token lacks (a subset of `scope`). */
  readonly missingScopes?: readonly string[];
  /** Goes into the JSON-RPC error's `data`. */
  readonly data?: Readonly<Record<string, unknown>>;
  /** Ids of the JSON-RPC requests refused, so the body answers each of them. */
  readonly rpcIds?: readonly RequestId[];
  /** The refused body was a batch (known before it was parsed whole): the answer is a batch too. */
  readonly batch?: boolean;
  readonly retryAfterSeconds?: number;
  readonly allow?: readonly string[];
  /** Adds a `DPoP` challenge (RFC 9449 §7.1) naming the proof algorithms accepted. */
  readonly dpop?: { readonly algs: readonly string[] };
  /** upstream_account_not_connected: the URL-mode elicitation that connects the account. */
  readonly elicitation?: UrlElicitation;
  /** Answers each request with this JSON-RPC result instead of an error (input_required). */
  readonly result?: Readonly<Record<string, unknown>>;
}

/** A URL-mode elicitation (MCP 2025-11-25 client/elicitation §URL Mode Elicitation Requests). */
export interface UrlElicitation {
  readonly url: string;
  /** Unique per elicitation; the client treats it as opaque. */
  readonly elicitationId: string;
  /** Why the user is asked, for the client to show. */
  readonly message: string;
}

/** A decision to refuse a request. Thrown by the pure checks, rendered in one place. */
export class Refusal extends Error {
  override readonly name = 'Refusal';
  constructor(
    readonly code: RefusalCode,
    /** Short, safe to show to the client (becomes `error_description` / JSON-RPC message). */
    message: string,
    readonly details: RefusalDetails = {},
  ) {
    super(message);
  }

  get shape(): RefusalShape {
    return refusalShape(this.code);
  }
}

export function isRefusal(error: unknown): error is Refusal {
  return error instanceof Refusal;
}
