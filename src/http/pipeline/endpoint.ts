import type { IncomingMessage, ServerResponse } from 'node:http';
import { isRefusal } from '../../errors.js';
import { recordOf } from '../gateway-response.js';
import type { RouteRuntime } from '../routes.js';
import { McpExchange } from './exchange.js';
import { answerRefusal } from './refusals.js';
import { RouteServices, type McpEndpointDeps } from './route-services.js';
import { runStages, type Stage } from './stage.js';
import { authenticateStage } from './stages/authenticate.js';
import { budgetsStage } from './stages/budgets.js';
import { forwardStage } from './stages/forward.js';
import { originStage } from './stages/origin.js';
import { readAndDecideStage } from './stages/read-and-decide.js';
import { relayStage } from './stages/relay.js';
import { routeScopesStage } from './stages/route-scopes.js';
import { sessionStage } from './stages/session.js';
import { upstreamCredentialStage } from './stages/upstream-credential.js';
import { RequestTrace } from '../../observability/request-trace.js';
import { describeTrace } from './trace-attributes.js';

export type { McpEndpointDeps };

/**
 * Answers one request on an MCP route, on the raw response. Returns a promise only when some
 * stage waited; rejects (or throws) only on a bug, which the listener answers as an internal error.
 */
export type McpHandler = (incoming: IncomingMessage, outgoing: ServerResponse) => void | Promise<void>;

/**
 * The request path of one route, as named stages in order. Each may refuse (a thrown Refusal,
 * answered in one place: refusals.ts) and nothing refused reaches the upstream; the relay stage
 * hands the upstream's answer over. docs/architecture.md walks one request through them.
 */
export function mcpEndpoint(route: RouteRuntime, deps: McpEndpointDeps): McpHandler {
  const services = new RouteServices(route, deps);
  const stages: readonly Stage[] = [
    originStage(services),
    authenticateStage(services),
    routeScopesStage(services),
    sessionStage(services),
    readAndDecideStage(services),
    budgetsStage(services),
    // Only on routes that send one: every other route pays nothing for it.
    ...(services.upstreamAuth ? [upstreamCredentialStage(services.upstreamAuth)] : []),
    forwardStage(services),
    relayStage(services),
  ];
  const refused = (exchange: McpExchange, error: unknown): void => {
    if (!isRefusal(error)) throw error;
    answerRefusal(services, exchange, error);
  };
  const { tracing } = deps;
  return function handleMcpRequest(incoming, outgoing) {
    const record = recordOf(outgoing);
    if (record) record.route = services.name;
    const method = incoming.method ?? '';
    // Traced only when tracing is on: the span is named as HTTP server spans are, method and route.
    if (tracing && record) record.trace = new RequestTrace(tracing, `${method} ${route.config.path}`, performance.timeOrigin + record.startedAt, tracing.extract(incoming.headers));
    const exchange = new McpExchange(incoming, outgoing, record, method);
    const done = () => describeTrace(exchange, route);
    let running: void | Promise<void>;
    try {
      running = runStages(stages, exchange);
    } catch (error) {
      refused(exchange, error);
      return done();
    }
    if (running === undefined) return done();
    return running.then(done, (error: unknown) => {
      refused(exchange, error);
      done();
    });
  };
}
