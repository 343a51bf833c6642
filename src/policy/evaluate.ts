import type { CompiledPolicy, Decision, PolicyRequest, Requirement, ToolRule } from './types.js';

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

/** The route-wide gate every request on the route passes first. */
export function decideRouteAccess(policy: CompiledPolicy, granted: ReadonlySet<string>): Decision {
  const missing = missingScopes(policy.routeScopes, granted);
  if (missing.length > 0) return { effect: 'step-up', reason: 'route-scopes-missing', rule: 'scopes', missing };
  return { effect: 'allow', reason: 'method-allowed', rule: 'scopes' };
}

export function decideToolCall(policy: CompiledPolicy, granted: ReadonlySet<string>, toolName: string): Decision {
  const rule = matchToolRule(policy, toolName);
  if (!rule) return { effect: 'deny', reason: 'tool-unmatched' };
  return decideRequirement(rule.requirement, granted, rule.id);
}

function decideRequirement(requirement: Requirement, granted: ReadonlySet<string>, rule: string): Decision {
  if (requirement.kind === 'deny') return { effect: 'deny', reason: 'tool-denied', rule };
  const missing = requirement.kind === 'scopes' ? missingScopes(requirement.scopes, granted) : closestAlternative(requirement.alternatives, granted);
  if (missing.length > 0) return { effect: 'step-up', reason: 'tool-scopes-missing', rule, missing };
  return { effect: 'allow', reason: 'tool-allowed', rule };
}

/** Decides one message, after the route gate. Methods other than tools/call need only the route scopes. */
export function decideRequest(policy: CompiledPolicy, granted: ReadonlySet<string>, request: PolicyRequest): Decision {
  const route = decideRouteAccess(policy, granted);
  if (route.effect !== 'allow') return route;
  if (request.kind === 'tool-call') return decideToolCall(policy, granted, request.tool);
  return route;
}

/**
 * Whether some token could call the tool: deny and unmatched tools are hidden from tools/list,
 * tools that merely need more scopes stay visible so the client can step up for them.
 */
export function isToolVisible(policy: CompiledPolicy, toolName: string): boolean {
  const rule = matchToolRule(policy, toolName);
  return rule !== undefined && rule.requirement.kind !== 'deny';
}

/**
 * The `scope` of an insufficient_scope challenge: the scopes already held that this route uses,
 * plus the newly required ones, so the re-authorised token keeps its earlier permissions
 * (MCP authorization 2025-11-25 §Scope Challenge Handling, Runtime Insufficient Scope Errors).
 */
export function stepUpScopes(policy: CompiledPolicy, granted: ReadonlySet<string>, missing: readonly string[]): string[] {
  const scopes = policy.scopesSupported.filter((scope) => granted.has(scope));
  for (const scope of missing) if (!scopes.includes(scope)) scopes.push(scope);
  return scopes;
}
