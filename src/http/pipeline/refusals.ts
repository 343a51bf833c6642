import type { ServerResponse } from 'node:http';
import type { Principal } from '../../auth/principal.js';
import { Refusal, type TokenFailure } from '../../errors.js';
import type { UpstreamFailure } from '../../observability/metrics.js';
import { elicitationAnswer } from '../../mcp/url-elicitation.js';
import { stepUpAsError } from '../../policy/enforce.js';
import type { RouteConfig } from '../../config/types.js';
import { writeRefusal } from '../refusal.js';
import { auditExchange } from './audit.js';
import type { McpExchange } from './exchange.js';
import type { RouteServices } from './route-services.js';

/**
 * The one place a refused exchange is answered: a step-up becomes a JSON-RPC error for the
 * clients a route names (routes[].stepUp), an account to connect becomes the URL elicitation (or
 * input-required result) the request's version knows, every refused request is answered under
 * its id, the access log and the metrics learn why, the decisions made so far are audited, and
 * the refusal is rendered (src/http/refusal.ts), or the response is cut if an answer had begun.
 */
export function answerRefusal(services: RouteServices, exchange: McpExchange, caught: Refusal): void {
  const { route, deps, name } = services;
  const ids = exchange.requestIds;
  // Answered as an error only where there are request ids to answer: a parsed POST body with
  // requests. The route-scope check (before the body is read), GET and DELETE keep the challenge.
  const asError = exchange.principal !== undefined && caught.code === 'insufficient_scope' && ids.length > 0 && answersStepUpWithError(route.config.stepUp, exchange.principal);
  // An account to connect first is asked for in the words of the request's protocol version.
  const shaped = asError ? stepUpAsError(caught, route.resourceMetadataUrl) : elicitationAnswer(caught, exchange.protocolVersion, exchange.body);
  const refusal = answeringRequests(shaped, ids);
  if (exchange.record) exchange.record.refusal = refusal;
  const failure = tokenFailureOf(refusal);
  if (failure) deps.metrics.tokenFailure(name, failure);
  const upstreamFailure = upstreamFailureOf(refusal, exchange.outgoing);
  if (upstreamFailure) deps.metrics.upstreamFailed(name, upstreamFailure);
  auditExchange(services, exchange, { status: refusal.shape.status });
  writeRefusal(exchange.outgoing, refusal, services.refusalContext(exchange.body));
}

/** Whether this route answers this principal's step-ups as a JSON-RPC error (routes[].stepUp). */
export function answersStepUpWithError(stepUp: RouteConfig['stepUp'], principal: Principal): boolean {
  if (stepUp.answer !== 'error') return false;
  return stepUp.clients === undefined || (principal.clientId !== undefined && stepUp.clients.includes(principal.clientId));
}

/**
 * A refusal of a parsed body answers each of its requests by id (JSON-RPC 2.0 §5), whatever
 * refused it: the upstream failing, or its answer being refused, as much as a policy.
 */
function answeringRequests(refusal: Refusal, rpcIds: readonly (string | number)[]): Refusal {
  if (refusal.details.rpcIds !== undefined || rpcIds.length === 0) return refusal;
  return new Refusal(refusal.code, refusal.message, { ...refusal.details, rpcIds });
}

/**
 * Which upstream failure a refusal counts as, if any. A client that hung up before the upstream
 * answered is not the upstream's failure: its response is already destroyed.
 */
function upstreamFailureOf(refusal: Refusal, outgoing: ServerResponse): UpstreamFailure | undefined {
  if (refusal.code === 'upstream_timeout') return 'timeout';
  if (refusal.code === 'upstream_unreachable' && !outgoing.destroyed) return 'unreachable';
  return undefined;
}

/** The token-failure reason a refusal counts as, if it is about the token. */
function tokenFailureOf(refusal: Refusal): TokenFailure | 'missing' | 'dpop-proof' | undefined {
  switch (refusal.code) {
    case 'missing_token':
      return 'missing';
    case 'invalid_token':
      return refusal.details.tokenFailure ?? 'invalid';
    case 'invalid_dpop_proof':
      return 'dpop-proof';
    default:
      return undefined;
  }
}
