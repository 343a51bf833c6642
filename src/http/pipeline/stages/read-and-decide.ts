import { parseMcpBody } from '../../../mcp/message.js';
import { decideBody, refusalFor } from '../../../policy/enforce.js';
import { readBody } from '../../body.js';
import { checkJsonContentType } from '../../content-type.js';
import { checkMirroredHeaders } from '../../mirrored-headers.js';
import type { McpExchange } from '../exchange.js';
import type { RouteServices } from '../route-services.js';
import type { Stage } from '../stage.js';

/**
 * A POST's body, read within the route's limit and parsed once (strictly: UTF-8 JSON, no
 * duplicate key, JSON-RPC 2.0), its 2026-07-28 mirrored headers checked against it, then every
 * message decided by the policy. One message no token may send refuses the body; one that needs
 * more scopes makes it a step-up. GET and DELETE carry no body and pass.
 */
export function readAndDecideStage(services: RouteServices): Stage {
  const { maxBodyBytes } = services.deps;
  return function readAndDecide(exchange) {
    if (exchange.method !== 'POST') return undefined;
    checkJsonContentType(exchange.incoming.headers);
    return readBody(exchange.incoming, maxBodyBytes).then((bytes) => decide(services, exchange, bytes));
  };
}

function decide({ policy }: RouteServices, exchange: McpExchange, bytes: Buffer): void {
  const principal = exchange.admitted;
  exchange.bytes = bytes;
  const body = parseMcpBody(bytes, exchange.protocolVersion);
  exchange.body = body;
  // 2026-07-28 (SEP-414): trace context may travel in `_meta` rather than in headers.
  if (body.metaTrace) exchange.trace?.honourMeta(body.metaTrace.traceparent, body.metaTrace.tracestate);
  checkMirroredHeaders(exchange.incoming.headers, exchange.protocolVersion, body);
  exchange.decisions = decideBody(policy, principal.scopes, body, principal);
  const refusal = refusalFor(policy, principal.scopes, body, exchange.decisions, exchange.protocolVersion);
  if (refusal) throw refusal;
}
