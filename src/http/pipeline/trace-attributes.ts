import type { RouteRuntime } from '../routes.js';
import type { McpExchange } from './exchange.js';

/**
 * What a request's span says about it (OpenTelemetry semantic conventions where they have a
 * name): the route, the MCP method and tool, the protocol version, the decision and its reason,
 * and the refusal. Never a token, an argument, a subject or a secret.
 */
export function describeTrace(exchange: McpExchange, route: RouteRuntime): void {
  const trace = exchange.trace;
  if (!trace) return;
  const first = exchange.body?.messages[0];
  const decision = exchange.decisions.find(({ decision }) => decision.effect !== 'allow')?.decision ?? exchange.decisions[0]?.decision;
  const refusal = exchange.record?.refusal;
  trace.setAttributes({
    'http.request.method': exchange.method,
    'http.route': route.config.path,
    'mcp_gateway.route': route.config.name,
    ...(first && first.kind !== 'response' ? { 'mcp.method.name': first.method } : {}),
    ...(first && first.kind !== 'response' && first.policy.kind === 'tool-call' ? { 'gen_ai.tool.name': first.policy.tool } : {}),
    ...(exchange.principal ? { 'mcp.protocol.version': exchange.protocolVersion } : {}),
    ...(decision ? { 'mcp_gateway.decision': decision.effect, 'mcp_gateway.reason': decision.reason, ...(decision.rule ? { 'mcp_gateway.rule': decision.rule } : {}) } : {}),
    ...(refusal ? { 'mcp_gateway.refusal': refusal.code } : {}),
  });
}
