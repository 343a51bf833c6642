import type { MessageDecision } from './enforce.js';
import { matchToolRule } from './evaluate.js';
import type { CompiledPolicy, RateLimitRule } from './types.js';

/** One budget a request spends from, and how much. */
export interface RateLimitCharge {
  readonly rule: RateLimitRule;
  readonly cost: number;
}

/**
 * The budgets a request about to be forwarded spends (pure): the route's, once per HTTP
 * request, and each allowed tool call's rule, once per call, so a 2025-03-26 batch of five calls
 * spends five. Refused requests never get here, so they spend nothing.
 */
export function rateLimitCharges(policy: CompiledPolicy, decisions: readonly MessageDecision[]): RateLimitCharge[] {
  const charges: RateLimitCharge[] = policy.routeRateLimit ? [{ rule: policy.routeRateLimit, cost: 1 }] : [];
  const toolCosts = new Map<RateLimitRule, number>();
  for (const { message, decision } of decisions) {
    if (decision.effect !== 'allow' || message.kind === 'response' || message.policy.kind !== 'tool-call') continue;
    const limit = matchToolRule(policy, message.policy.tool)?.rateLimit;
    if (limit) toolCosts.set(limit, (toolCosts.get(limit) ?? 0) + 1);
  }
  for (const [rule, cost] of toolCosts) charges.push({ rule, cost });
  return charges;
}
