import { beforeAll, describe, expect, it } from 'vitest';
import { JSONRPC_UNAUTHORIZED, Refusal } from '../../../src/errors.js';
import { answerRefusal } from '../../../src/http/pipeline/refusals.js';
import { nextTurn, TestExchange, type RequestSpec } from '../../support/pipeline-exchange.js';
import { PipelineWorld, rpc, toolCall, worldsClosedAfterAll } from '../../support/pipeline-services.js';

/** The one place a refused exchange is answered (src/http/pipeline/refusals.ts). */
describe('answerRefusal', () => {
  const worldWith = worldsClosedAfterAll();
  let world: PipelineWorld;
  beforeAll(async () => {
    world = await worldWith();
  });

  /** Runs a request through the stages up to read-and-decide; returns it with the refusal, if one came. */
  const refusedOn = async (on: PipelineWorld, spec: RequestSpec, claims: Record<string, unknown> = {}): Promise<{ test: TestExchange; refusal: Refusal }> => {
    const test = await on.request(spec, claims);
    try {
      await on.through(test, 'authenticate', 'routeScopes', 'session', 'readAndDecide');
    } catch (error) {
      if (error instanceof Refusal) return { test, refusal: error };
      throw error;
    }
    throw new Error('expected the stages to refuse');
  };

  it.each([{ answer: 'error' as const }, { answer: 'error' as const, clients: ['agent-1'] }])('answers a step-up as a JSON-RPC error under the call’s id on a route with stepUp %o', async (stepUp) => {
    const errorRoute = await worldWith({ route: { stepUp } });
    const { test, refusal } = await refusedOn(errorRoute, { body: toolCall(5, 'add_todo') });
    expect(refusal.code).toBe('insufficient_scope');
    answerRefusal(errorRoute.services, test.exchange, refusal);
    const answer = await test.finished();
    expect(answer.status).toBe(200);
    expect(answer.headers['www-authenticate']).toBeUndefined();
    expect(JSON.parse(answer.body)).toEqual({
      jsonrpc: '2.0',
      id: 5,
      error: {
        code: JSONRPC_UNAUTHORIZED,
        message: 'Insufficient scope: this request needs todo:write',
        data: { error: 'insufficient_scope', scope: 'todo:read todo:write', missing_scopes: ['todo:write'], resource_metadata: errorRoute.route.resourceMetadataUrl },
      },
    });
    expect(test.record.refusal?.code).toBe('insufficient_scope_error');
  });

  it('answers the same step-up with the 403 challenge otherwise: a challenge route, a client not named, no request id', async () => {
    const named = await worldWith({ route: { stepUp: { answer: 'error', clients: ['some-other-agent'] } } });
    const errorRoute = await worldWith({ route: { stepUp: { answer: 'error' } } });
    const cases: { on: PipelineWorld; spec: RequestSpec; claims?: Record<string, unknown> }[] = [
      { on: world, spec: { body: toolCall(5, 'add_todo') } },
      { on: named, spec: { body: toolCall(5, 'add_todo') } },
      // The route's own scopes are checked before any body is read: no id to answer under.
      { on: errorRoute, spec: { method: 'GET' }, claims: { scope: 'other:scope' } },
    ];
    for (const { on, spec, claims } of cases) {
      const { test, refusal } = await refusedOn(on, spec, claims);
      answerRefusal(on.services, test.exchange, refusal);
      const answer = await test.finished();
      expect(answer.status).toBe(403);
      expect(answer.headers['www-authenticate']).toMatch(/^Bearer error="insufficient_scope"/);
      expect(answer.headers['www-authenticate']).toContain(`resource_metadata="${on.route.resourceMetadataUrl}"`);
      expect(test.record.refusal?.code).toBe('insufficient_scope');
    }
  });

  it('answers every request of a parsed body under its id when the refusal named none, and once without an id when there is no body', async () => {
    // No version header: 2025-03-26 is assumed, where batches are allowed.
    const test = await world.request({ body: [rpc(1, 'tools/list'), rpc('two', 'tools/list')] });
    await world.through(test, 'authenticate', 'routeScopes', 'session', 'readAndDecide');
    const timeout = new Refusal('upstream_timeout', 'Upstream did not answer in time');
    answerRefusal(world.services, test.exchange, timeout);
    const answer = await test.finished();
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.body)).toEqual([1, 'two'].map((id) => ({ jsonrpc: '2.0', id, error: { code: -32603, message: 'Upstream did not answer in time' } })));
    // The record holds the refusal as answered, with the ids.
    expect(test.record.refusal).toMatchObject({ code: 'upstream_timeout', details: { rpcIds: [1, 'two'] } });

    const bodiless = new TestExchange({ method: 'GET' });
    answerRefusal(world.services, bodiless.exchange, timeout);
    expect(JSON.parse((await bodiless.finished()).body)).toEqual({ jsonrpc: '2.0', error: { code: -32603, message: 'Upstream did not answer in time' } });
    expect(bodiless.record.refusal).toBe(timeout);
  });

  it('counts a refusal about the token by its reason, and nothing for any other refusal', async () => {
    const own = await worldWith();
    const failures = (reason: string) => own.metric('mcp_gateway_token_failures_total', { route: 'todo', reason });

    answerRefusal(own.services, new TestExchange().exchange, new Refusal('missing_token', 'No access token'));
    answerRefusal(own.services, new TestExchange().exchange, new Refusal('invalid_token', 'Not for this resource', { tokenFailure: 'audience' }));
    answerRefusal(own.services, new TestExchange().exchange, new Refusal('invalid_token', 'Bad token'));
    expect(await failures('missing')).toBe(1);
    expect(await failures('audience')).toBe(1);
    expect(await failures('invalid')).toBe(1);

    answerRefusal(own.services, new TestExchange().exchange, new Refusal('rate_limited', 'Rate limit exceeded', { retryAfterSeconds: 3 }));
    expect(await own.metric('mcp_gateway_token_failures_total')).toBe(3);
  });

  it('audits the decisions made so far once, with the refusal’s status; an exchange without decisions audits nothing', async () => {
    const own = await worldWith();
    const { test, refusal } = await refusedOn(own, { body: toolCall(4, 'secret_tool') });
    answerRefusal(own.services, test.exchange, refusal);
    expect(own.audits).toEqual([expect.objectContaining({ requestId: test.record.id, tool: 'secret_tool', decision: 'deny', status: 200 })]);
    expect(await own.metric('mcp_gateway_decisions_total', { route: 'todo', effect: 'deny' })).toBe(1);

    // Answered again (a second failure on the same exchange): no second audit.
    answerRefusal(own.services, test.exchange, new Refusal('upstream_unreachable', 'Upstream unreachable'));
    expect(own.audits).toHaveLength(1);
    expect(await own.metric('mcp_gateway_decisions_total', { route: 'todo' })).toBe(1);

    const get = new TestExchange({ method: 'GET' });
    get.exchange.principal = await own.principal();
    answerRefusal(own.services, get.exchange, new Refusal('session_not_found', 'Session not found'));
    expect(own.audits).toHaveLength(1);
  });

  it('cuts a response whose answer had begun instead of appending a refusal to it', async () => {
    const begun = new TestExchange();
    begun.res.writeHead(200, { 'content-type': 'text/event-stream' });
    begun.res.write('data: {}\n\n');
    // Node sends what was written on the next tick: by then the client has the head.
    await nextTurn();
    expect(begun.written).toMatchObject({ status: 200, complete: false });
    const before = begun.wire.bytes.length;
    answerRefusal(world.services, begun.exchange, new Refusal('upstream_unreachable', 'Upstream answer could not be relayed'));
    expect(begun.res.destroyed).toBe(true);
    expect(begun.wire.destroyed).toBe(true);
    expect(begun.wire.bytes.length).toBe(before);
    expect(begun.written).toMatchObject({ status: 200, complete: false });

    // Control: the same refusal before anything was written is answered whole.
    const fresh = new TestExchange();
    answerRefusal(world.services, fresh.exchange, new Refusal('upstream_unreachable', 'Upstream answer could not be relayed'));
    expect(await fresh.finished()).toMatchObject({ status: 502, complete: true });
    expect(fresh.res.destroyed).toBe(false);
  });

  it('does not count the upstream as failed when the client had already gone', async () => {
    const own = await worldWith();
    const unreachable = () => own.metric('mcp_gateway_upstream_errors_total', { route: 'todo', reason: 'unreachable' });
    const gone = new TestExchange();
    await gone.hangUp();
    answerRefusal(own.services, gone.exchange, new Refusal('upstream_unreachable', 'Client closed the connection'));
    expect(await unreachable()).toBe(0);

    answerRefusal(own.services, new TestExchange().exchange, new Refusal('upstream_unreachable', 'Upstream unreachable'));
    expect(await unreachable()).toBe(1);
  });
});
