import type { Principal } from '../auth/principal.js';
import type { RouteConfig } from '../config/types.js';
import type { McpMessage } from '../mcp/message.js';
import type { MessageDecision } from '../policy/enforce.js';
import { bounded } from './bounded.js';
import { requestLineLogger, type Logger } from './logger.js';

/** How a request that carried the decisions ended. */
export interface AuditOutcome {
  /** What the client was answered (a refusal's status, or the upstream's). */
  readonly status: number;
  /** The upstream's status, when the request was forwarded. */
  readonly upstreamStatus?: number;
  /** Milliseconds from forwarding to the upstream's response headers. */
  readonly upstreamMs?: number;
}

/**
 * One audit event per authorization decision (every JSON-RPC message of a POST body), after
 * the outcome is known: who (issuer, subject, client), what (method and tool, resource or
 * prompt), the decision with its reason and rule, and what came of it. Tokens are never in it;
 * tool arguments only when the route opts in, redacted.
 */
export function auditDecisions(
  logger: Logger,
  route: RouteConfig,
  requestId: string,
  principal: Principal,
  decisions: readonly MessageDecision[],
  outcome: AuditOutcome,
): void {
  if (!logger.isLevelEnabled('info')) return;
  const lines = requestLineLogger(logger);
  for (const { message, decision } of decisions) {
    lines.info(
      {
        event: 'authz',
        requestId,
        route: route.name,
        iss: principal.issuer,
        sub: principal.subject,
        client: principal.clientId,
        method: message.kind === 'response' ? 'response' : message.method,
        ...targetOf(message),
        ...(route.audit.arguments && message.kind !== 'response' && message.policy.kind === 'tool-call'
          ? { arguments: redactArguments(message.policy.arguments ?? {}, route.audit.redact) }
          : {}),
        decision: decision.effect,
        reason: decision.reason,
        rule: decision.rule,
        status: outcome.status,
        upstreamStatus: outcome.upstreamStatus,
        upstreamMs: outcome.upstreamMs,
        // Which mode supplied the credential the upstream got (routes[].upstreamAuth); never the credential.
        upstreamAuth: route.upstreamAuth?.mode,
      },
      'authorization decision',
    );
  }
}

function targetOf(message: McpMessage): { tool?: string; resource?: string; prompt?: string; resources?: readonly string[] } {
  if (message.kind === 'response') return {};
  switch (message.policy.kind) {
    case 'tool-call':
      return { tool: message.policy.tool };
    case 'resource':
      return { resource: bounded(message.policy.uri) };
    case 'prompt':
      return { prompt: bounded(message.policy.name) };
    case 'other':
      return {};
    case 'listen':
      return { resources: message.policy.uris.slice(0, MAX_ITEMS).map(bounded) };
    case 'completion':
      return message.policy.ref.kind === 'prompt' ? { prompt: bounded(message.policy.ref.name) } : { resource: bounded(message.policy.ref.uri) };
  }
}

const MAX_DEPTH = 4;
const MAX_ITEMS = 32;

/**
 * A copy of tool arguments safe to log: values under a key containing any `redact` entry
 * (case-insensitive, at any depth) become "[redacted]", long strings are cut, and deep or
 * wide structures are summarised, so a log line stays bounded.
 */
export function redactArguments(value: unknown, redact: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') return bounded(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? '[array]' : '[object]';
  if (Array.isArray(value)) return value.slice(0, MAX_ITEMS).map((item) => redactArguments(item, redact, depth + 1));
  // No prototype: an argument named __proto__ is logged as a key like any other, not swallowed.
  const copy: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [key, item] of Object.entries(value).slice(0, MAX_ITEMS)) {
    const lower = key.toLowerCase();
    copy[key] = redact.some((needle) => lower.includes(needle)) ? '[redacted]' : redactArguments(item, redact, depth + 1);
  }
  return copy;
}
