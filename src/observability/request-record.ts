import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../auth/principal.js';
import type { Refusal } from '../errors.js';
import type { RequestTrace } from './request-trace.js';

/** What the gateway believes about where a request came from (src/http/forwarded.ts works it out). */
export interface ClientOrigin {
  /**
   * The client's address: the peer, or the nearest untrusted hop a trusted proxy reported;
   * undefined when a trusted proxy reported something that is not an address (then nobody knows).
   */
  readonly address: string | undefined;
  /**
   * The chain to send upstream as X-Forwarded-For: the believed client, the trusted hops after it,
   * then the peer. What an untrusted hop claimed (anything left of the believed client) is dropped.
   */
  readonly forwardedFor: string | undefined;
  readonly proto: 'http' | 'https';
  readonly host: string | undefined;
  /** True when the peer is a trusted proxy (its X-Request-Id is believed too). */
  readonly viaTrustedProxy: boolean;
}

/**
 * What the access log learns about one request as it passes through: its id and origin from the
 * start, and the route, principal and refusal once the MCP pipeline knows them. One per request,
 * held by its response (src/http/gateway-response.ts).
 */
export class RequestRecord {
  route: string | undefined = undefined;
  principal: Principal | undefined = undefined;
  /** Why the request was refused, if it was. */
  refusal: Refusal | undefined = undefined;
  /** The request's trace, when tracing is on: ended with the response. */
  trace: RequestTrace | undefined = undefined;
  readonly startedAt = performance.now();

  constructor(
    readonly id: string,
    readonly origin: ClientOrigin,
  ) {}
}

/** A request id a proxy may hand us: short, visible ASCII, nothing to inject into logs. */
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** Starts a request's record; a trusted proxy's X-Request-Id is kept so logs correlate end to end. */
export function beginRequest(headers: IncomingHttpHeaders, origin: ClientOrigin): RequestRecord {
  const offered = origin.viaTrustedProxy ? headers['x-request-id'] : undefined;
  return new RequestRecord(typeof offered === 'string' && REQUEST_ID.test(offered) ? offered : randomUUID(), origin);
}
