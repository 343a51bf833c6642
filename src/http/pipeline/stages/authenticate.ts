import type { AuthRoute } from '../../../auth/authenticate.js';
import type { Principal } from '../../../auth/principal.js';
import { enforceRouteAccess } from '../../../policy/enforce.js';
import type { McpExchange } from '../exchange.js';
import type { RouteServices } from '../route-services.js';
import type { Stage } from '../stage.js';

/** Reading headersDistinct builds a copy of every header: only done when a DPoP proof is sent. */
const NO_PROOFS: readonly string[] = [];

/**
 * Whose token admits the request (MCP authorization §Token Handling: the resource server
 * validates every request's access token, issued for this resource). A token this route has
 * verified before is admitted without a promise; any other is verified against its issuer (keys,
 * introspection, a DPoP proof). Refuses with the 401 challenge.
 */
export function authenticateStage({ route, policy, deps }: RouteServices): Stage {
  const authRoute: AuthRoute = {
    name: route.config.name,
    resource: route.resource,
    // Route scopes are checked before a DPoP proof is recorded, so a refused request records nothing.
    admit: (principal) => enforceRouteAccess(policy, principal.scopes),
  };
  const { authenticator } = deps;
  return function authenticate(exchange) {
    const { incoming } = exchange;
    const authorization = incoming.headers.authorization;
    const cached = authenticator.cachedPrincipal(authorization, authRoute, incoming.socket);
    if (cached !== undefined) return admit(exchange, cached);
    const dpopProofs = incoming.headers.dpop === undefined ? NO_PROOFS : (incoming.headersDistinct.dpop ?? NO_PROOFS);
    return authenticator.authenticate(authorization, authRoute, { method: exchange.method, dpopProofs, context: exchange.record }).then((principal) => admit(exchange, principal));
  };
}

function admit(exchange: McpExchange, principal: Principal): void {
  exchange.principal = principal;
  if (exchange.record) exchange.record.principal = principal;
}
