import { principalKey } from '../../../auth/principal.js';
import { Refusal } from '../../../errors.js';
import { asSupportedVersion, isStateless, parseProtocolVersionHeader, parseSessionIdHeader, type ProtocolVersion } from '../../../mcp/protocol.js';
import type { SessionBinding } from '../../../mcp/sessions.js';
import { unsupportedVersionRefusal } from '../../../mcp/version-refusal.js';
import { readBody } from '../../body.js';
import { checkJsonContentType } from '../../content-type.js';
import { headerValue } from '../../headers.js';
import { dropMirroredHeaders } from '../../mirrored-headers.js';
import type { McpExchange } from '../exchange.js';
import type { RouteServices } from '../route-services.js';
import type { Stage } from '../stage.js';

/**
 * Which protocol version the request speaks and which session it belongs to. The version is the
 * MCP-Protocol-Version header; without it, the session's; without a session, 2025-03-26
 * (Streamable HTTP §Protocol Version Header). 2026-07-28 is stateless (its changelog): no
 * session is looked up, a session id sent anyway is ignored and not forwarded, and only POST is
 * taken. Otherwise a session must have been created through the gateway by this same principal
 * (issuer + subject), else 404 exactly as for an unknown one (§Session Management).
 */
export function sessionStage({ route, deps }: RouteServices): Stage {
  const { sessions, maxBodyBytes } = deps;
  return function session(exchange) {
    const { headers } = exchange.incoming;
    const versionHeader = headerValue(headers, 'mcp-protocol-version');
    const declared = versionHeader === undefined ? undefined : asSupportedVersion(versionHeader.trim());
    if (versionHeader !== undefined && declared === undefined) return unsupportedVersion(exchange, versionHeader, maxBodyBytes);
    exchange.stateless = declared !== undefined && isStateless(declared);
    if (exchange.stateless) {
      if (exchange.method !== 'POST') throw new Refusal('method_not_allowed', 'Method not allowed', { allow: ['POST'] });
      delete headers['mcp-session-id'];
    } else {
      // Mirrored headers mean something only in 2026-07-28: in any other version they are not forwarded.
      dropMirroredHeaders(headers);
    }
    const sessionId = exchange.stateless ? undefined : parseSessionIdHeader(headerValue(headers, 'mcp-session-id'));
    exchange.sessionId = sessionId;
    if (sessionId === undefined) {
      exchange.protocolVersion = declared ?? parseProtocolVersionHeader(undefined);
      return;
    }
    return sessions.authorize(route.config.name, sessionId, principalKey(exchange.admitted)).then((binding) => bindSession(exchange, binding, declared));
  };
}

function bindSession(exchange: McpExchange, binding: SessionBinding | undefined, declared: ProtocolVersion | undefined): void {
  exchange.session = binding;
  exchange.protocolVersion = declared ?? parseProtocolVersionHeader(undefined, binding?.protocolVersion);
}

/**
 * A version the gateway does not support is refused. A POST's body is read first (within the
 * same limits as any body) so the answer carries each request's id, and the 2026-07-28 error
 * when the body speaks that way; a body that cannot be read is refused as it would be anyway.
 */
function unsupportedVersion(exchange: McpExchange, header: string, maxBodyBytes: number): Promise<void> | undefined {
  if (exchange.method !== 'POST') throw unsupportedVersionRefusal(header, undefined);
  checkJsonContentType(exchange.incoming.headers);
  return readBody(exchange.incoming, maxBodyBytes).then((bytes) => {
    throw unsupportedVersionRefusal(header, bytes);
  });
}
