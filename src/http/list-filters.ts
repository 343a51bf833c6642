import type { Principal } from '../auth/principal.js';
import { BoundedMap } from '../cache/bounded-map.js';
import { ListFilter } from '../mcp/list-filter.js';
import { conditionalRules, conditionHolds, isPromptVisible, isResourceTemplateVisible, isResourceVisible, isToolVisible } from '../policy/evaluate.js';
import type { CompiledPolicy, TokenFacts } from '../policy/types.js';

/** Distinct condition outcomes kept per route; beyond this the oldest filter is dropped. */
const MAX_FILTERS = 64;

/**
 * The list filter each principal's answers go through. Lists agree with decisions: an item no
 * token could use is hidden from everyone, and an item whose rule has a `when` the principal
 * does not fit is hidden from that principal. A filter remembers the answers it filtered (see
 * AnswerTemplates), so principals who fit the same conditions share one filter; a policy without
 * conditions has one filter for the route, and one that hides nothing has none.
 */
export class RouteListFilters {
  private readonly shared: ListFilter | undefined;
  private readonly byOutcome = new BoundedMap<string, ListFilter>({ maxEntries: MAX_FILTERS });

  constructor(private readonly policy: CompiledPolicy) {
    this.shared = conditionalRules(policy).length === 0 && filtersAnything(policy) ? buildFilter(policy, undefined) : undefined;
  }

  /** A verified token's principal is the same object on every request (VerifiedTokenCache): its filter is found once. */
  private readonly ofPrincipal = new WeakMap<Principal, ListFilter>();

  /** The filter for this principal's answers; undefined when nothing could be hidden from it. */
  filterFor(principal: Principal): ListFilter | undefined {
    const rules = conditionalRules(this.policy);
    if (rules.length === 0) return this.shared;
    const known = this.ofPrincipal.get(principal);
    if (known) return known;
    // Which conditions hold, as a key: principals alike in all of them see the same lists.
    let outcome = '';
    for (const rule of rules) outcome += conditionHolds(rule.when!, principal) ? '1' : '0';
    let filter = this.byOutcome.get(outcome);
    if (filter === undefined) this.byOutcome.set(outcome, (filter = buildFilter(this.policy, principal)));
    this.ofPrincipal.set(principal, filter);
    return filter;
  }
}

/** Whether a policy without conditions hides anything: a tool rule short of a catch-all, or resource or prompt rules. */
function filtersAnything(policy: CompiledPolicy): boolean {
  return !policy.showsEveryTool || policy.resources !== undefined || policy.prompts !== undefined;
}

/** A filter for what `facts` may see (undefined: what anyone may see). */
function buildFilter(policy: CompiledPolicy, facts: TokenFacts | undefined): ListFilter {
  // A principal's facts are read once here: the filter keeps only what its checks need.
  const bound: TokenFacts | undefined = facts && { claims: facts.claims, ...(facts.subject !== undefined ? { subject: facts.subject } : {}), ...(facts.clientId !== undefined ? { clientId: facts.clientId } : {}) };
  // A catch-all shows every tool to someone: then tools lists are filtered (parsed) only where a
  // tool rule's condition can hide a tool from this principal.
  const hidesTools = !policy.showsEveryTool || (bound !== undefined && [...policy.exactTools.values(), ...policy.globTools].some((rule) => rule.when !== undefined));
  return new ListFilter({
    ...(hidesTools ? { tool: (name: string) => isToolVisible(policy, name, bound) } : {}),
    ...(policy.resources
      ? { resource: (uri: string) => isResourceVisible(policy, uri, bound), resourceTemplate: (uriTemplate: string) => isResourceTemplateVisible(policy, uriTemplate, bound) }
      : {}),
    ...(policy.prompts ? { prompt: (name: string) => isPromptVisible(policy, name, bound) } : {}),
  });
}
