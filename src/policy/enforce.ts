import { Refusal, type RefusalCode, type RequestId } from '../errors.js';
import { requestIdsOf, type McpBody, type McpMessage } from '../mcp/message.js';
import { decideRequest, decideRouteAccess, NO_FACTS, stepUpScopes } from './evaluate.js';
import { isStateless, type ProtocolVersion } from '../mcp/protocol.js';
import { resourceTemplateProblem, resourceUriProblem } from '../mcp/resource-uri.js';
import type { CompiledPolicy, Decision, DecisionReason, PolicyRequest, TokenFacts } from './types.js';

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
export function decideBody(policy: CompiledPolicy, granted: ReadonlySet<string>, body: McpBody, facts: TokenFacts = NO_FACTS): MessageDecision[] {
  return body.messages.map((message) => ({
    message,
    decision: message.kind === 'response' ? decideRouteAccess(policy, granted) : decideRequest(policy, granted, message.policy, facts),
  }));
}

/**
 * The refusal a body's decisions add up to, if any. One message that no token may send refuses
 * the whole body (for a 2025-03-26 batch too), as if the tool did not exist; otherwise one that
 * needs more scopes makes the whole body a step-up naming every scope the body needs.
 */
export function refusalFor(policy: CompiledPolicy, granted: ReadonlySet<string>, body: McpBody, decisions: readonly MessageDecision[], version?: ProtocolVersion): Refusal | undefined {
  const denied = decisions.find((d) => d.decision.effect === 'deny');
  if (denied && denied.message.kind !== 'response') {
    const { code, text } =
      denied.decision.reason === 'arguments-not-allowed' ? argumentsRefusal(denied.message.policy) : denialOf(denied.message.policy, denied.decision.reason, version !== undefined && isStateless(version));
    const requestIds = requestIdsOf(body);
    if (requestIds.length === 0) return new Refusal('notification_denied', text);
    // In a batch every request is answered with this error, so it says which call sank the batch.
    return new Refusal(code, body.isBatch ? `Batch refused: ${text}` : text, { rpcIds: requestIds });
  }
  // Every request that is let through passes here: nothing is built for it.
  let missing: Set<string> | undefined;
  for (const { decision } of decisions) if (decision.effect === 'step-up') decision.missing.forEach((s) => (missing ??= new Set()).add(s));
  if (missing !== undefined && missing.size > 0) return stepUp(policy, granted, [...missing], requestIdsOf(body));
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
    missingScopes: missing,
    rpcIds,
  });
}

/** A denial answers exactly as for something that does not exist (MCP tools, resources, prompts §Error Handling). */
function denialOf(request: PolicyRequest, reason: DecisionReason, stateless: boolean): { code: RefusalCode; text: string } {
  // Not a denial of something that exists: a URI the gateway cannot decide on, said plainly.
  if (reason === 'resource-uri-invalid') return { code: 'invalid_resource_uri', text: `Invalid params: ${resourceUriRefusalText(request)}` };
  const resourceCode: RefusalCode = stateless ? 'resource_denied_invalid_params' : 'resource_denied';
  const methodCode: RefusalCode = stateless ? 'method_denied_not_found' : 'method_denied';
  switch (request.kind) {
    case 'tool-call':
      return { code: 'tool_denied', text: `Unknown tool: ${request.tool}` };
    case 'resource':
      return { code: resourceCode, text: `Resource not found: ${request.uri}` };
    case 'listen':
      // Denied for a subscribed resource, or for the method itself.
      return reason.startsWith('resource-')
        ? { code: resourceCode, text: 'Resource not found' }
        : { code: methodCode, text: 'Method not found: subscriptions/listen' };
    case 'prompt':
      return { code: 'prompt_denied', text: `Unknown prompt: ${request.name}` };
    case 'other':
      return { code: methodCode, text: `Method not found: ${request.method}` };
    case 'completion':
      // As the SDK answers a completion for a prompt or template it does not have: invalid params.
      if (reason.startsWith('method-')) return { code: methodCode, text: 'Method not found: completion/complete' };
      return request.ref.kind === 'prompt'
        ? { code: 'prompt_denied', text: `Unknown prompt: ${request.ref.name}` }
        : { code: 'resource_denied_invalid_params', text: `Resource template not found: ${request.ref.uri}` };
  }
}

/** Which URI of the request is not in normal form, and why. */
function resourceUriRefusalText(request: PolicyRequest): string {
  const candidates =
    request.kind === 'resource' ? [{ uri: request.uri, problem: resourceUriProblem(request.uri) }]
    : request.kind === 'listen' ? request.uris.map((uri) => ({ uri, problem: resourceUriProblem(uri) }))
    : request.kind === 'completion' && request.ref.kind === 'resource-template' ? [{ uri: request.ref.uri, problem: resourceTemplateProblem(request.ref.uri) }]
    : [];
  const found = candidates.find((candidate) => candidate.problem !== undefined);
  return found ? `resource URI ${JSON.stringify(found.uri.slice(0, 200))} ${found.problem}` : 'resource URI is not in normal form';
}

/** The tool exists for this token, its arguments do not fit: MCP tools §Error Handling, invalid arguments. */
function argumentsRefusal(request: PolicyRequest): { code: RefusalCode; text: string } {
  return { code: 'invalid_tool_call', text: `Invalid arguments for tool ${request.kind === 'tool-call' ? request.tool : ''}: not allowed by policy` };
}

/**
 * A step-up answered as a JSON-RPC error (HTTP 200, no challenge) for clients known not to
 * re-authorise: `error.data` names the scopes the call needs, the ones missing, and where the
 * resource's metadata is, so a person can get the token fixed.
 */
export function stepUpAsError(refusal: Refusal, resourceMetadataUrl: string): Refusal {
  const missing = refusal.details.missingScopes ?? [];
  return new Refusal('insufficient_scope_error', `Insufficient scope: this request needs ${missing.join(' ')}`, {
    ...(refusal.details.rpcIds ? { rpcIds: refusal.details.rpcIds } : {}),
    data: { error: 'insufficient_scope', scope: (refusal.details.scope ?? []).join(' '), missing_scopes: missing, resource_metadata: resourceMetadataUrl },
  });
}
