import type { ServerResponse } from 'node:http';
import type { Refusal } from '../errors.js';
import { withRequestId } from './gateway-response.js';
import { bearerChallenge, dpopChallenge } from './challenge.js';

export interface RefusalContext {
  readonly resourceMetadataUrl: string;
  /** Scopes the route asks every token for; the 401 challenges name them. */
  readonly routeScopes: readonly string[];
  /** When the refused body was a batch, the answer is a batch too. */
  readonly isBatch?: boolean;
  /** Set on routes that accept DPoP: every challenge offers it too (RFC 9449 §7.1). */
  readonly dpop?: { readonly algs: readonly string[] };
}

export interface RenderedRefusal {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The one place a refusal becomes an HTTP response: status, challenge and JSON-RPC body. */
export function renderRefusal(refusal: Refusal, context: RefusalContext): RenderedRefusal {
  const shape = refusal.shape;
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (shape.challenge) {
    // An invalid DPoP proof is reported on the DPoP challenge only (RFC 9449 §7.1); the Bearer
    // challenge still points clients at the resource metadata.
    const onDpop = shape.oauthError === 'invalid_dpop_proof';
    const challenges = [
      bearerChallenge({
        error: onDpop ? undefined : shape.oauthError,
        errorDescription: shape.oauthError && !onDpop ? refusal.message : undefined,
        scope: refusal.details.scope ?? context.routeScopes,
        resourceMetadata: context.resourceMetadataUrl,
      }),
    ];
    const dpop = refusal.details.dpop ?? context.dpop;
    if (dpop) {
      challenges.push(dpopChallenge({ error: onDpop ? shape.oauthError : undefined, errorDescription: onDpop ? refusal.message : undefined, algs: dpop.algs }));
    }
    headers['www-authenticate'] = challenges.join(', ');
  }
  if (refusal.details.retryAfterSeconds !== undefined) headers['retry-after'] = String(refusal.details.retryAfterSeconds);
  if (refusal.details.allow) headers.allow = refusal.details.allow.join(', ');
  return { status: shape.status, headers, body: JSON.stringify(rpcErrorBody(refusal, shape.rpcCode, refusal.details.batch ?? context.isBatch ?? false)) };
}

/**
 * One JSON-RPC error (for input_required, a result) per refused request; when no request id is
 * known, a single error without an id (Streamable HTTP §Sending Messages to the Server: "a
 * JSON-RPC error response that has no id"; MCP ids are never null).
 */
function rpcErrorBody(refusal: Refusal, code: number, isBatch: boolean): unknown {
  const ids = refusal.details.rpcIds ?? [];
  const { result } = refusal.details;
  // A result answers requests only (an input-required result asks the client for input).
  if (result && ids.length > 0) {
    const answers = ids.map((id) => ({ jsonrpc: '2.0', id, result }));
    return isBatch ? answers : answers[0];
  }
  const error = { code, message: refusal.message, ...(refusal.details.data ? { data: refusal.details.data } : {}) };
  const errors = ids.length > 0 ? ids.map((id) => ({ jsonrpc: '2.0', id, error })) : [{ jsonrpc: '2.0', error }];
  return isBatch ? errors : errors[0];
}

/** For refusals made before a route is known (no challenge can name a route's metadata). */
const NO_ROUTE: RefusalContext = { resourceMetadataUrl: '', routeScopes: [] };

/**
 * Writes a refusal on the raw response; once an answer has started, the connection is cut
 * instead (a half-sent answer must not read as complete).
 */
export function writeRefusal(res: ServerResponse, refusal: Refusal, context: RefusalContext = NO_ROUTE): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { status, headers, body } = renderRefusal(refusal, context);
  // Refused before the client finished sending its body (a 401 or 413 ahead of a large upload):
  // the rest is not read, the connection closes after the answer. Reading it on would hold the
  // connection for as long as the client keeps sending.
  if (res.req && !res.req.complete) res.shouldKeepAlive = false;
  res.writeHead(status, withRequestId(res, { ...headers, 'content-length': String(Buffer.byteLength(body)) }));
  res.end(body);
}
