import { hasRequiredClaims } from '../auth/claims.js';
import { resourceReadings, resourceTemplateProblem, resourceUriProblem } from '../mcp/resource-uri.js';
import type { ArgumentConstraint, CompiledPolicy, CompletionRef, Decision, DecisionReason, PolicyRequest, Requirement, RuleCondition, RuleSet, TokenFacts, ToolRule } from './types.js';

/**
 * Pure policy evaluation: a function of the compiled policy, the scopes a token carries and the
 * parsed request. No I/O, no clock, so it is tested without a server.
 */

export function matchToolRule(policy: CompiledPolicy, toolName: string): ToolRule | undefined {
  const exact = policy.exactTools.get(toolName);
  if (exact) return exact;
  for (const rule of policy.globTools) if (rule.matches(toolName)) return rule;
  return undefined;
}

function missingScopes(required: readonly string[], granted: ReadonlySet<string>): string[] {
  return required.filter((scope) => !granted.has(scope));
}

/**
 * What an anyOf rule still lacks: nothing when one alternative is held in full; otherwise the
 * alternative needing the fewest new scopes, so a step-up asks for little; among equals, the one
 * the token is furthest along (most scopes held), then the first.
 */
function closestAlternative(alternatives: readonly (readonly string[])[], granted: ReadonlySet<string>): string[] {
  let best: { missing: string[]; held: number } | undefined;
  for (const alternative of alternatives) {
    const missing = missingScopes(alternative, granted);
    if (missing.length === 0) return [];
    const held = alternative.length - missing.length;
    if (best === undefined || missing.length < best.missing.length || (missing.length === best.missing.length && held > best.held)) best = { missing, held };
  }
  return best?.missing ?? [];
}

/**
 * The scopes a token holds under this policy: its own, plus every scope the policy names that a
 * held `scopePatterns` entry covers. Without patterns (most policies) the token's set is returned
 * as is, so the hot path pays one length check.
 */
export function heldScopes(policy: CompiledPolicy, tokenScopes: ReadonlySet<string>): ReadonlySet<string> {
  let held: Set<string> | undefined;
  for (const pattern of policy.scopePatterns) {
    if (!tokenScopes.has(pattern.scope)) continue;
    held ??= new Set(tokenScopes);
    for (const scope of policy.scopesSupported) if (scope.length > pattern.prefix.length && scope.startsWith(pattern.prefix)) held.add(scope);
  }
  return held ?? tokenScopes;
}

/** The route-wide gate every request on the route passes first. */
export function decideRouteAccess(policy: CompiledPolicy, tokenScopes: ReadonlySet<string>): Decision {
  return routeGate(policy, heldScopes(policy, tokenScopes));
}

function routeGate(policy: CompiledPolicy, granted: ReadonlySet<string>): Decision {
  const missing = missingScopes(policy.routeScopes, granted);
  if (missing.length > 0) return { effect: 'step-up', reason: 'route-scopes-missing', rule: 'scopes', missing };
  return { effect: 'allow', reason: 'method-allowed', rule: 'scopes' };
}

export function decideToolCall(policy: CompiledPolicy, tokenScopes: ReadonlySet<string>, toolName: string, facts: TokenFacts = NO_FACTS, args: Readonly<Record<string, unknown>> = {}): Decision {
  return toolCall(policy, heldScopes(policy, tokenScopes), toolName, facts, args);
}

function toolCall(policy: CompiledPolicy, granted: ReadonlySet<string>, toolName: string, facts: TokenFacts, args: Readonly<Record<string, unknown>>): Decision {
  const rule = matchToolRule(policy, toolName);
  if (!rule) return { effect: 'deny', reason: 'tool-unmatched' };
  const decision = decideRule(rule, granted, TOOL_REASONS, facts);
  // Arguments are checked last: a call the token may make at all, with arguments it may not use.
  if (decision.effect === 'allow' && rule.arguments && !argumentsAllowed(rule.arguments, args)) {
    return { effect: 'deny', reason: 'arguments-not-allowed', rule: rule.id };
  }
  return decision;
}

interface Reasons {
  readonly allowed: DecisionReason;
  readonly missing: DecisionReason;
  readonly denied: DecisionReason;
}
const TOOL_REASONS: Reasons = { allowed: 'tool-allowed', missing: 'tool-scopes-missing', denied: 'tool-denied' };
const RESOURCE_REASONS: Reasons = { allowed: 'resource-allowed', missing: 'resource-scopes-missing', denied: 'resource-denied' };
const PROMPT_REASONS: Reasons = { allowed: 'prompt-allowed', missing: 'prompt-scopes-missing', denied: 'prompt-denied' };
const METHOD_REASONS: Reasons = { allowed: 'method-allowed', missing: 'method-scopes-missing', denied: 'method-denied' };

export function matchRule(rules: RuleSet, name: string): ToolRule | undefined {
  const exact = rules.exact.get(name);
  if (exact) return exact;
  for (const rule of rules.globs) if (rule.matches(name)) return rule;
  return undefined;
}

/**
 * Methods of the MCP specification (client to server) that need only the route scopes unless
 * `methods:` says otherwise. Any other request method is denied by default: an upstream's
 * private extension is not exposed until a policy names it. Notifications carry no answer and
 * are let through (their upstream effects are the spec's: cancellation, progress, roots).
 */
const SPEC_METHODS = new Set([
  'initialize', 'ping', 'tools/list', 'resources/list', 'resources/templates/list', 'prompts/list',
  'completion/complete', 'logging/setLevel', 'tasks/get', 'tasks/list', 'tasks/result', 'tasks/cancel',
  // 2026-07-28: capabilities discovery, and the listen stream (decided with its resources).
  'server/discover', 'subscriptions/listen',
]);

function decideNamed(rules: RuleSet | undefined, name: string, granted: ReadonlySet<string>, reasons: Reasons, unmatched: DecisionReason, route: Decision, facts: TokenFacts): Decision {
  if (!rules) return route;
  const rule = matchRule(rules, name);
  if (!rule) return { effect: 'deny', reason: unmatched };
  return decideRule(rule, granted, reasons, facts);
}

function decideMethod(policy: CompiledPolicy, granted: ReadonlySet<string>, method: string, route: Decision, facts: TokenFacts): Decision {
  const rule = policy.methods.get(method);
  if (rule) return decideRule(rule, granted, METHOD_REASONS, facts);
  if (SPEC_METHODS.has(method) || method.startsWith('notifications/')) return route;
  return { effect: 'deny', reason: 'method-unknown' };
}

/** No claims, no subject, no client: what explain and tests assume unless told otherwise. */
export const NO_FACTS: TokenFacts = { claims: {} };

/**
 * A rule's `when` comes before its scopes: a token it does not fit is denied outright (no
 * step-up can change who the token is), answered as if the item did not exist.
 */
function decideRule(rule: ToolRule, granted: ReadonlySet<string>, reasons: Reasons, facts: TokenFacts): Decision {
  if (rule.when && !conditionHolds(rule.when, facts)) return { effect: 'deny', reason: 'condition-unmet', rule: rule.id };
  return decideRequirement(rule.requirement, granted, rule.id, reasons);
}

/** Every constrained argument is present and allowed (own properties only). */
function argumentsAllowed(constraints: ReadonlyMap<string, ArgumentConstraint>, args: Readonly<Record<string, unknown>>): boolean {
  for (const [name, constraint] of constraints) {
    if (!Object.hasOwn(args, name) || !constraint.allows(args[name])) return false;
  }
  return true;
}

export function conditionHolds(condition: RuleCondition, facts: TokenFacts): boolean {
  if (condition.subjects && (facts.subject === undefined || !condition.subjects.includes(facts.subject))) return false;
  if (condition.clients && (facts.clientId === undefined || !condition.clients.includes(facts.clientId))) return false;
  return condition.claims === undefined || hasRequiredClaims(facts.claims, condition.claims);
}

function decideRequirement(requirement: Requirement, granted: ReadonlySet<string>, rule: string, reasons: Reasons): Decision {
  if (requirement.kind === 'deny') return { effect: 'deny', reason: reasons.denied, rule };
  const missing = requirement.kind === 'scopes' ? missingScopes(requirement.scopes, granted) : closestAlternative(requirement.alternatives, granted);
  if (missing.length > 0) return { effect: 'step-up', reason: reasons.missing, rule, missing };
  return { effect: 'allow', reason: reasons.allowed, rule };
}

/** Decides one message, after the route gate. Methods other than tools/call need only the route scopes. */
export function decideRequest(policy: CompiledPolicy, tokenScopes: ReadonlySet<string>, request: PolicyRequest, facts: TokenFacts = NO_FACTS): Decision {
  const granted = heldScopes(policy, tokenScopes);
  const route = routeGate(policy, granted);
  if (route.effect !== 'allow') return route;
  switch (request.kind) {
    case 'tool-call':
      return toolCall(policy, granted, request.tool, facts, request.arguments ?? {});
    case 'resource':
      return decideResource(policy, granted, request.uri, route, facts);
    case 'prompt':
      return decideNamed(policy.prompts, request.name, granted, PROMPT_REASONS, 'prompt-unmatched', route, facts);
    case 'other':
      return decideMethod(policy, granted, request.method, route, facts);
    case 'listen':
      return decideListen(policy, granted, request.uris, route, facts);
    case 'completion':
      return decideCompletion(policy, granted, request.ref, route, facts);
  }
}

/**
 * A resource is decided on the URI the upstream will act on: one not in normal form is refused
 * (see src/mcp/resource-uri.ts), and one with a query is decided with and without it, the most
 * restrictive answer winning. Without a `resources:` section every URI gets the route's answer,
 * so no spelling can change it.
 */
function decideResource(policy: CompiledPolicy, granted: ReadonlySet<string>, uri: string, route: Decision, facts: TokenFacts): Decision {
  const rules = policy.resources;
  if (!rules) return route;
  if (resourceUriProblem(uri) !== undefined) return { effect: 'deny', reason: 'resource-uri-invalid' };
  const readings = resourceReadings(uri);
  if (readings.length === 1) return decideNamed(rules, uri, granted, RESOURCE_REASONS, 'resource-unmatched', route, facts);
  return mostRestrictive(readings.map((reading) => decideNamed(rules, reading, granted, RESOURCE_REASONS, 'resource-unmatched', route, facts)));
}

/**
 * completion/complete is decided as its method, then as a read of what it completes: the values
 * it returns belong to the prompt or resource template it names, so a hidden one stays hidden.
 */
function decideCompletion(policy: CompiledPolicy, granted: ReadonlySet<string>, ref: CompletionRef, route: Decision, facts: TokenFacts): Decision {
  const method = decideMethod(policy, granted, 'completion/complete', route, facts);
  if (method.effect === 'deny') return method;
  const target =
    ref.kind === 'prompt'
      ? decideNamed(policy.prompts, ref.name, granted, PROMPT_REASONS, 'prompt-unmatched', route, facts)
      : decideTemplate(policy, granted, ref.uri, route, facts);
  return mostRestrictive([method, target]);
}

/** A resource template (completion's `ref/resource`) is decided like a resource, on its template text. */
function decideTemplate(policy: CompiledPolicy, granted: ReadonlySet<string>, template: string, route: Decision, facts: TokenFacts): Decision {
  if (!policy.resources) return route;
  if (resourceTemplateProblem(template) !== undefined) return { effect: 'deny', reason: 'resource-uri-invalid' };
  return decideNamed(policy.resources, template, granted, RESOURCE_REASONS, 'resource-unmatched', route, facts);
}

/**
 * Several decisions about one request, as one: the first denial; else a step-up for every scope
 * any of them misses (named by the first step-up); else the first allow.
 */
function mostRestrictive(decisions: readonly Decision[]): Decision {
  let stepUp: Extract<Decision, { effect: 'step-up' }> | undefined;
  for (const decision of decisions) {
    if (decision.effect === 'deny') return decision;
    if (decision.effect !== 'step-up') continue;
    stepUp = stepUp ? { ...stepUp, missing: [...new Set([...stepUp.missing, ...decision.missing])] } : decision;
  }
  return stepUp ?? decisions[0]!;
}

/**
 * A listen stream is decided as its method, then as a read of every resource it subscribes to:
 * the first denial (or else step-up) decides, so no stream is opened for updates the principal
 * could not read.
 */
function decideListen(policy: CompiledPolicy, granted: ReadonlySet<string>, uris: readonly string[], route: Decision, facts: TokenFacts): Decision {
  const method = decideMethod(policy, granted, 'subscriptions/listen', route, facts);
  if (method.effect !== 'allow') return method;
  let stepUp: Decision | undefined;
  for (const uri of uris) {
    const decision = decideResource(policy, granted, uri, route, facts);
    if (decision.effect === 'deny') return decision;
    if (decision.effect === 'step-up' && !stepUp) stepUp = decision;
  }
  return stepUp ?? method;
}

/** Whether this token may read the resource: what a resources/updated notification may reveal. */
export function mayReadResource(policy: CompiledPolicy, tokenScopes: ReadonlySet<string>, uri: string, facts: TokenFacts): boolean {
  return decideRequest(policy, tokenScopes, { kind: 'resource', method: 'resources/read', uri }, facts).effect === 'allow';
}

/**
 * Whether a listed item may be shown to a principal: a rule matches it, does not deny it, and
 * its `when` fits the principal (facts; without them, any principal). Scopes do not count: an
 * item that needs more of them stays visible so the client can step up for it. Lists agree with
 * decisions: what a principal can never use, it is not shown.
 */
function isRuleVisible(rule: ToolRule | undefined, facts: TokenFacts | undefined): boolean {
  return rule !== undefined && rule.requirement.kind !== 'deny' && (facts === undefined || rule.when === undefined || conditionHolds(rule.when, facts));
}

/** Whether the resource may be listed: readable by someone (by this principal, given facts), in normal form. */
export function isResourceVisible(policy: CompiledPolicy, uri: string, facts?: TokenFacts): boolean {
  const rules = policy.resources;
  if (!rules) return true;
  if (resourceUriProblem(uri) !== undefined) return false;
  return resourceReadings(uri).every((reading) => isRuleVisible(matchRule(rules, reading), facts));
}

/** Whether the resource template may be listed, judged by its uriTemplate. */
export function isResourceTemplateVisible(policy: CompiledPolicy, uriTemplate: string, facts?: TokenFacts): boolean {
  if (!policy.resources) return true;
  return resourceTemplateProblem(uriTemplate) === undefined && isRuleVisible(matchRule(policy.resources, uriTemplate), facts);
}

export function isPromptVisible(policy: CompiledPolicy, name: string, facts?: TokenFacts): boolean {
  if (!policy.prompts) return true;
  return isRuleVisible(matchRule(policy.prompts, name), facts);
}

/**
 * Whether the tool may be listed: deny and unmatched tools are hidden from tools/list, and so
 * are tools whose `when` this principal does not fit (given facts); tools that merely need more
 * scopes stay visible so the client can step up for them.
 */
export function isToolVisible(policy: CompiledPolicy, toolName: string, facts?: TokenFacts): boolean {
  return isRuleVisible(matchToolRule(policy, toolName), facts);
}

/**
 * The rules whose `when` decides whether a principal sees an item: two principals for whom each
 * holds alike see the same lists. Listed once per policy.
 */
export function conditionalRules(policy: CompiledPolicy): readonly ToolRule[] {
  let rules = conditionalRulesOf.get(policy);
  if (rules === undefined) {
    const all = [...policy.exactTools.values(), ...policy.globTools, ...ruleSetRules(policy.resources), ...ruleSetRules(policy.prompts)];
    conditionalRulesOf.set(policy, (rules = all.filter((rule) => rule.when !== undefined && rule.requirement.kind !== 'deny')));
  }
  return rules;
}

const conditionalRulesOf = new WeakMap<CompiledPolicy, readonly ToolRule[]>();

function ruleSetRules(rules: RuleSet | undefined): ToolRule[] {
  return rules ? [...rules.exact.values(), ...rules.globs] : [];
}

/**
 * The `scope` of an insufficient_scope challenge: the scopes already held that this route uses,
 * plus the newly required ones, so the re-authorised token keeps its earlier permissions
 * (MCP authorization 2025-11-25 §Scope Challenge Handling, Runtime Insufficient Scope Errors).
 */
export function stepUpScopes(policy: CompiledPolicy, tokenScopes: ReadonlySet<string>, missing: readonly string[]): string[] {
  // The token's own scopes, not what its patterns expand to: a held pattern is asked for again
  // as itself, and keeps covering its family.
  const scopes = policy.scopesSupported.filter((scope) => tokenScopes.has(scope));
  for (const scope of missing) if (!scopes.includes(scope)) scopes.push(scope);
  return scopes;
}
