import type { MessageDecision } from './enforce.js';
import { matchRule, matchToolRule } from './evaluate.js';
import type { CompiledPolicy, PolicyRequest, RateLimitRule, ToolRule } from './types.js';

/** One budget a request spends from, and how much. */
export interface RateLimitCharge {
  readonly rule: RateLimitRule;
  readonly cost: number;
}

/**
 * The budgets a request about to be forwarded spends (pure): the route's, once per HTTP
 * request, and each allowed message's rule (tool, resource, prompt or method), once per message, so a
 * 2025-03-26 batch of five calls
 * spends five. Refused requests never get here, so they spend nothing.
 */
export function rateLimitCharges(policy: CompiledPolicy, decisions: readonly MessageDecision[]): RateLimitCharge[] {
  const charges: { rule: RateLimitRule; cost: number }[] = policy.routeRateLimit ? [{ rule: policy.routeRateLimit, cost: 1 }] : [];
  for (const { message, decision } of decisions) {
    if (decision.effect !== 'allow' || message.kind === 'response') continue;
    const limit = ruleFor(policy, message.policy)?.rateLimit;
    if (!limit) continue;
    // A request names a few rules at most (one, mostly): a search of the list, no Map per request.
    const charged = charges.find((charge) => charge.rule === limit);
    if (charged) charged.cost++;
    else charges.push({ rule: limit, cost: 1 });
  }
  return charges;
}

/** The rule that decided a request, whose budget it spends (if the rule has one). */
function ruleFor(policy: CompiledPolicy, request: PolicyRequest): ToolRule | undefined {
  switch (request.kind) {
    case 'tool-call':
      return matchToolRule(policy, request.tool);
    case 'resource':
      return policy.resources && matchRule(policy.resources, request.uri);
    case 'prompt':
      return policy.prompts && matchRule(policy.prompts, request.name);
    case 'other':
      return policy.methods.get(request.method);
    case 'listen':
      return policy.methods.get('subscriptions/listen');
  }
}
