import { enforceRouteAccess } from '../../../policy/enforce.js';
import type { RouteServices } from '../route-services.js';
import type { Stage } from '../stage.js';

/** The route's own scopes, which every request needs: missing ones are a step-up (403 insufficient_scope). */
export function routeScopesStage({ policy }: RouteServices): Stage {
  return function routeScopes(exchange) {
    enforceRouteAccess(policy, exchange.admitted.scopes);
  };
}
