import { ServerResponse, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { RequestRecord } from '../observability/request-record.js';

/**
 * The listener's response class: a ServerResponse that holds its request's record, so the
 * access log, the MCP pipeline and whatever writes the answer find it as a typed field rather
 * than a property stuck on a Node object.
 */
export class GatewayResponse extends ServerResponse<IncomingMessage> {
  record: RequestRecord | undefined = undefined;
}

/** The record of the request this response answers; undefined for a response not made by the gateway's listener (tests). */
export function recordOf(res: ServerResponse): RequestRecord | undefined {
  return res instanceof GatewayResponse ? res.record : undefined;
}

/**
 * Adds the request's X-Request-Id to a head about to be written with writeHead (and returns
 * it). MCP routes set no header before their one writeHead: a header set early makes Node keep
 * every header of the answer in a map as well as in the written head, and validate each one
 * again, which cost an open stream about half a kilobyte and every answer a few microseconds.
 */
export function withRequestId<T extends OutgoingHttpHeaders>(res: ServerResponse, headers: T): T {
  const id = recordOf(res)?.id;
  if (id !== undefined) (headers as OutgoingHttpHeaders)['x-request-id'] = id;
  return headers;
}
