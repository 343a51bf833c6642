import { auditDecisions, type AuditOutcome } from '../../observability/audit.js';
import type { McpExchange } from './exchange.js';
import type { RouteServices } from './route-services.js';

/**
 * Counts and logs the exchange's decisions once: with the upstream's status once it has
 * answered, or with the refusal's if the exchange is refused first.
 */
export function auditExchange({ route, deps, name }: RouteServices, exchange: McpExchange, outcome: AuditOutcome): void {
  if (exchange.audited || exchange.decisions.length === 0 || exchange.principal === undefined) return;
  exchange.audited = true;
  for (const { decision } of exchange.decisions) deps.metrics.decision(name, decision);
  auditDecisions(deps.logger, route.config, exchange.record?.id ?? '', exchange.principal, exchange.decisions, outcome);
}
