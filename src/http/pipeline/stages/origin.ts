import { Refusal } from '../../../errors.js';
import { allowOrigin, preflightHeaders } from '../../cors.js';
import { withRequestId } from '../../gateway-response.js';
import { headerValue } from '../../headers.js';
import type { RouteServices } from '../route-services.js';
import type { Stage } from '../stage.js';

/** Streamable HTTP uses POST (messages), GET (server stream) and DELETE (end session). */
const MCP_METHODS: readonly string[] = ['POST', 'GET', 'DELETE'];

/**
 * Where the request comes from and what it is: a browser Origin must be publicUrl's or an
 * allowed one (Streamable HTTP §Security Warning: servers MUST validate Origin, against DNS
 * rebinding); a CORS preflight is answered here, before authentication, as it carries no
 * credentials; and only the methods of Streamable HTTP go on (405 otherwise).
 */
export function originStage({ route, deps }: RouteServices): Stage {
  return function origin(exchange) {
    const { incoming, outgoing } = exchange;
    const origin = incoming.headers.origin;
    deps.checkOrigin(origin);
    if (origin !== undefined) {
      if (exchange.method === 'OPTIONS' && incoming.headers['access-control-request-method'] !== undefined) {
        const requested = headerValue(incoming.headers, 'access-control-request-headers');
        outgoing.writeHead(204, withRequestId(outgoing, preflightHeaders(origin, route.forwardHeaders, requested))).end();
        exchange.answered = true;
        return;
      }
      allowOrigin(outgoing, origin);
    }
    if (!MCP_METHODS.includes(exchange.method)) throw new Refusal('method_not_allowed', 'Method not allowed', { allow: MCP_METHODS });
  };
}
