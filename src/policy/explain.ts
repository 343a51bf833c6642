import { decideRequest, stepUpScopes } from './evaluate.js';
import type { CompiledPolicy, DecisionReason, PolicyRequest, TokenFacts } from './types.js';

/** What the gateway would do with one request, and why: the answer `explain` and policy tests give. */
export interface Explanation {
  readonly decision: 'allow' | 'deny' | 'step-up';
  readonly reason: DecisionReason;
  /** The rule that decided, as written in the policy (e.g. `tools["admin_*"]`); absent when none matched. */
  readonly rule?: string;
  /** For a step-up: the scopes the insufficient_scope challenge would ask for. */
  readonly stepUpScopes?: readonly string[];
}

/** Pure: the decision for `request` by a token holding `scopes`, exactly as the gateway decides it. */
export function explainRequest(policy: CompiledPolicy, scopes: ReadonlySet<string>, request: PolicyRequest, facts?: TokenFacts): Explanation {
  const decision = decideRequest(policy, scopes, request, facts);
  return {
    decision: decision.effect,
    reason: decision.reason,
    ...(decision.rule !== undefined ? { rule: decision.rule } : {}),
    ...(decision.effect === 'step-up' ? { stepUpScopes: stepUpScopes(policy, scopes, decision.missing) } : {}),
  };
}

/** A request named on the command line or in a test case: a tool call, a resource read, a prompt, or any other method. */
export function policyRequestOf(target: { tool?: string | undefined; args?: Record<string, unknown> | undefined; resource?: string | undefined; prompt?: string | undefined; method?: string | undefined }): PolicyRequest {
  if (target.tool !== undefined) return { kind: 'tool-call', tool: target.tool, ...(target.args ? { arguments: target.args } : {}) };
  if (target.resource !== undefined) return { kind: 'resource', method: 'resources/read', uri: target.resource };
  if (target.prompt !== undefined) return { kind: 'prompt', name: target.prompt };
  return { kind: 'other', method: target.method ?? 'tools/list' };
}

/** The token a command line or a test case describes: its claims, subject and client, as given. */
export function tokenFactsOf(token: { claims?: Record<string, unknown> | undefined; subject?: string | undefined; client?: string | undefined }): TokenFacts {
  return {
    claims: token.claims ?? {},
    ...(token.subject !== undefined ? { subject: token.subject } : {}),
    ...(token.client !== undefined ? { clientId: token.client } : {}),
  };
}

export function formatExplanation(explanation: Explanation): string {
  const lines = [`decision: ${explanation.decision}`, `reason:   ${explanation.reason}`, `rule:     ${explanation.rule ?? '(none matched)'}`];
  if (explanation.stepUpScopes) lines.push(`step-up:  scope="${explanation.stepUpScopes.join(' ')}"`);
  return `${lines.join('\n')}\n`;
}
