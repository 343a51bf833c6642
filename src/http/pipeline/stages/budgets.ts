import { rateLimitCharges } from '../../../policy/rate-limits.js';
import type { RouteServices } from '../route-services.js';
import type { Stage } from '../stage.js';

/**
 * What the request spends before it may go: the route's and each allowed message's rate-limit
 * budgets (429 when one is spent), and, for an initialize that will open a session, room in the
 * store to bind it (503 now, rather than after the upstream opened a session the gateway could
 * not bind). Most routes have no budgets and most requests open no session: then nothing is asked.
 */
export function budgetsStage({ route, policy, deps }: RouteServices): Stage {
  const { sessions, rateLimiter } = deps;
  return function budgets(exchange) {
    const opensSession = exchange.sessionId === undefined && exchange.body?.initializeVersion !== undefined;
    const room = opensSession ? sessions.ensureAvailable() : undefined;
    const charges = rateLimitCharges(policy, exchange.decisions);
    // Most routes have no budgets: then the store is not asked at all.
    if (charges.length === 0) return room;
    const spend = () => rateLimiter.enforce({ route: route.config.name, charges, principal: exchange.admitted, rpcIds: exchange.requestIds, onStoreError: route.config.onStoreError });
    if (room === undefined) return spend();
    return room.then(spend);
  };
}
