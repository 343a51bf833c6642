import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.js';
import type { Refusal } from '../errors.js';
import type { ClientOrigin } from '../http/forwarded.js';

/**
 * What the access log learns about a request as it passes through: its id from the start, and
 * the route and principal once the MCP endpoint knows them. Kept on the request itself (a symbol
 * key: no WeakMap entry per request, and nothing outlives it) rather than threaded through
 * every function.
 */
export interface RequestContext {
  readonly id: string;
  readonly startedAt: number;
  /** Where the request came from, as far as trusted proxies vouch for it. */
  readonly origin: ClientOrigin;
  route?: string;
  principal?: Principal;
  /** Why the request was refused, if it was. */
  refusal?: Refusal;
}

const CONTEXT = Symbol('mcp-auth-gateway.request-context');
type WithContext = IncomingMessage & { [CONTEXT]?: RequestContext };

/** A request id a proxy may hand us: short, visible ASCII, nothing to inject into logs. */
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** Starts a request's context; a trusted proxy's X-Request-Id is kept so logs correlate end to end. */
export function beginRequest(req: IncomingMessage, origin: ClientOrigin): RequestContext {
  const offered = origin.viaTrustedProxy ? req.headers['x-request-id'] : undefined;
  const context: RequestContext = {
    id: typeof offered === 'string' && REQUEST_ID.test(offered) ? offered : randomUUID(),
    startedAt: performance.now(),
    origin,
  };
  (req as WithContext)[CONTEXT] = context;
  return context;
}

export function requestContext(req: IncomingMessage): RequestContext | undefined {
  return (req as WithContext)[CONTEXT];
}

/**
 * Adds the request's X-Request-Id to a head about to be written with writeHead (and returns
 * it). MCP routes set no header before their one writeHead: a header set early makes Node keep
 * every header of the answer in a map as well as in the written head, and validate each one
 * again, which cost an open stream about half a kilobyte and every answer a few microseconds.
 */
export function withRequestId<T extends OutgoingHttpHeaders>(res: ServerResponse, headers: T): T {
  const id = res.req === undefined ? undefined : requestContext(res.req)?.id;
  if (id !== undefined) (headers as OutgoingHttpHeaders)['x-request-id'] = id;
  return headers;
}
