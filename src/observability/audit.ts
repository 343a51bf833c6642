import type { Principal } from '../auth/principal.js';
import type { RouteConfig } from '../config/types.js';
import type { McpMessage } from '../mcp/message.js';
import type { MessageDecision } from '../policy/enforce.js';
import { bounded } from './bounded.js';
import type { Logger } from './logger.js';
import { jsonField, numberField, stringField, writeInfoLine, type LineFields } from './request-lines.js';

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
  // The same for every decision of the request: built once.
  const who =
    stringField('requestId', requestId) +
    stringField('route', route.name) +
    stringField('iss', principal.issuer) +
    stringField('sub', principal.subject) +
    stringField('client', principal.clientId);
  const outcomeFields =
    numberField('status', outcome.status) +
    numberField('upstreamStatus', outcome.upstreamStatus) +
    numberField('upstreamMs', outcome.upstreamMs) +
    // Which mode supplied the credential the upstream got (routes[].upstreamAuth); never the credential.
    stringField('upstreamAuth', route.upstreamAuth?.mode);
  for (const { message, decision } of decisions) {
    writeInfoLine(
      logger,
      ',"event":"authz"' +
        who +
        stringField('method', message.kind === 'response' ? 'response' : message.method) +
        targetOf(message) +
        (route.audit.arguments && message.kind !== 'response' && message.policy.kind === 'tool-call'
          ? jsonField('arguments', redactArguments(message.policy.arguments ?? {}, route.audit.redact))
          : '') +
        stringField('decision', decision.effect) +
        stringField('reason', decision.reason) +
        stringField('rule', decision.rule) +
        outcomeFields,
      'authorization decision',
    );
  }
}

/** The tool, resource or prompt a message names, as line fields. */
function targetOf(message: McpMessage): LineFields {
  if (message.kind === 'response') return '';
  switch (message.policy.kind) {
    case 'tool-call':
      return stringField('tool', message.policy.tool);
    case 'resource':
      return stringField('resource', bounded(message.policy.uri));
    case 'prompt':
      return stringField('prompt', bounded(message.policy.name));
    case 'other':
      return '';
    case 'listen':
      return jsonField('resources', message.policy.uris.slice(0, MAX_ITEMS).map(bounded));
    case 'completion':
      return message.policy.ref.kind === 'prompt' ? stringField('prompt', bounded(message.policy.ref.name)) : stringField('resource', bounded(message.policy.ref.uri));
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
