import { Refusal, type RequestId } from '../errors.js';
import { requestIdsOf, type McpBody, type McpMessage } from '../mcp/message.js';
import { decideRequest, decideRouteAccess, stepUpScopes } from './evaluate.js';
import type { CompiledPolicy, Decision } from './types.js';

export interface MessageDecision {
  readonly message: McpMessage;
  readonly decision: Decision;
}

/** The route gate, as a refusal: a token without the route's scopes steps up for them. */
export function enforceRouteAccess(policy: CompiledPolicy, granted: ReadonlySet<string>): void {
  const decision = decideRouteAccess(policy, granted);
  if (decision.effect === 'step-up') throw stepUp(policy, granted, decision.missing, []);
}

/** Decides every message of a body (pure; the caller audits the decisions, then enforces them). */
export function decideBody(policy: CompiledPolicy, granted: ReadonlySet<string>, body: McpBody): MessageDecision[] {
  return body.messages.map((message) => ({
    message,
    decision: message.kind === 'response' ? decideRouteAccess(policy, granted) : decideRequest(policy, granted, message.policy),
  }));
}

/**
 * The refusal a body's decisions add up to, if any. One message that no token may send refuses
 * the whole body (for a 2025-03-26 batch too), as if the tool did not exist; otherwise one that
 * needs more scopes makes the whole body a step-up naming every scope the body needs.
 */
export function refusalFor(policy: CompiledPolicy, granted: ReadonlySet<string>, body: McpBody, decisions: readonly MessageDecision[]): Refusal | undefined {
  const requestIds = requestIdsOf(body);
  const denied = decisions.find((d) => d.decision.effect === 'deny');
  if (denied) {
    const tool = denied.message.kind !== 'response' && denied.message.policy.kind === 'tool-call' ? denied.message.policy.tool : '';
    if (requestIds.length === 0) return new Refusal('notification_denied', `Unknown tool: ${tool}`);
    // In a batch every request is answered with this error, so it says which call sank the batch.
    const message = body.isBatch ? `Batch refused: Unknown tool: ${tool}` : `Unknown tool: ${tool}`;
    return new Refusal('tool_denied', message, { rpcIds: requestIds });
  }
  const missing = new Set<string>();
  for (const { decision } of decisions) if (decision.effect === 'step-up') decision.missing.forEach((s) => missing.add(s));
  if (missing.size > 0) return stepUp(policy, granted, [...missing], requestIds);
  return undefined;
}

/** decideBody then refusalFor, for callers with nothing to audit in between. */
export function enforceBody(policy: CompiledPolicy, granted: ReadonlySet<string>, body: McpBody): MessageDecision[] {
  const decisions = decideBody(policy, granted, body);
  const refusal = refusalFor(policy, granted, body, decisions);
  if (refusal) throw refusal;
  return decisions;
}

function stepUp(policy: CompiledPolicy, granted: ReadonlySet<string>, missing: readonly string[], rpcIds: RequestId[]): Refusal {
  return new Refusal('insufficient_scope', `Additional scopes required: ${missing.join(' ')}`, {
    scope: stepUpScopes(policy, granted, missing),
    rpcIds,
  });
}
