import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JSONRPC_INVALID_PARAMS } from '../../../src/errors.js';
import { answerRefusal } from '../../../src/http/pipeline/refusals.js';
import { refusalOfStage, TestExchange, type RequestSpec } from '../../support/pipeline-exchange.js';
import { PipelineWorld, toolCall } from '../../support/pipeline-services.js';

/**
 * A POST's body is read once and every message decided by the route's policy: a tool nobody may
 * call answers as an unknown tool (MCP tools §Error Handling), one needing more scopes is a
 * step-up; an allowed body is forwarded as the same bytes.
 */
describe('read-and-decide stage', () => {
  let world: PipelineWorld;
  beforeAll(async () => {
    world = await PipelineWorld.create();
  });
  afterAll(() => world.close());

  const admitted = async (spec: RequestSpec, scope = 'todo:read') => {
    const test = new TestExchange({ ...spec, headers: { 'content-type': 'application/json', ...spec.headers } });
    test.exchange.principal = await world.principal({ scope });
    return test;
  };

  it('refuses a denied tool with tool_denied under the call’s id, the decision kept for the audit', async () => {
    const test = await admitted({ body: toolCall(3, 'secret_tool') });
    const refusal = await refusalOfStage(world.stages.readAndDecide, test.exchange);
    expect(refusal.code).toBe('tool_denied');
    expect(refusal.details.rpcIds).toEqual([3]);
    expect(test.exchange.decisions.map(({ decision }) => decision.effect)).toEqual(['deny']);

    answerRefusal(world.services, test.exchange, refusal);
    const answer = await test.finished();
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ jsonrpc: '2.0', id: 3, error: { code: JSONRPC_INVALID_PARAMS, message: 'Unknown tool: secret_tool' } });
  });

  it('refuses a tool that needs more scopes than the token has with insufficient_scope naming them', async () => {
    const test = await admitted({ body: toolCall('w', 'add_todo', { title: 'x' }) });
    const refusal = await refusalOfStage(world.stages.readAndDecide, test.exchange);
    expect(refusal.code).toBe('insufficient_scope');
    expect(refusal.details.missingScopes).toEqual(['todo:write']);
    expect(refusal.details.scope).toEqual(expect.arrayContaining(['todo:read', 'todo:write']));
    expect(refusal.details.rpcIds).toEqual(['w']);

    // With the scope, the same call passes.
    const allowed = await admitted({ body: toolCall('w', 'add_todo', { title: 'x' }) }, 'todo:read todo:write');
    await world.stages.readAndDecide(allowed.exchange);
    expect(allowed.exchange.decisions.map(({ decision }) => decision.effect)).toEqual(['allow']);
  });

  it('keeps an allowed call’s bytes exactly as sent, with its parsed body and decisions', async () => {
    // Key order and spacing a re-serialisation would change: the upstream gets what the policy judged.
    const sent = Buffer.from('{ "params": {"name":"list_todos", "arguments": {}}, "id": 9, "method": "tools/call", "jsonrpc": "2.0" }');
    const test = await admitted({ body: sent });
    await world.stages.readAndDecide(test.exchange);
    expect(test.exchange.bytes?.equals(sent)).toBe(true);
    expect(test.exchange.requestIds).toEqual([9]);
    expect(test.exchange.decisions).toHaveLength(1);
    expect(test.exchange.decisions[0]!.decision).toMatchObject({ effect: 'allow' });
    expect(test.exchange.decisions[0]!.message).toMatchObject({ kind: 'request', method: 'tools/call' });
  });

  it('reads nothing of a GET (nor a DELETE)', async () => {
    for (const method of ['GET', 'DELETE']) {
      const test = await admitted({ method, body: 'left alone' });
      expect(world.stages.readAndDecide(test.exchange)).toBeUndefined();
      expect(test.exchange.bytes).toBeUndefined();
      expect(test.exchange.body).toBeUndefined();
      expect(test.req.readableLength).toBe('left alone'.length);
    }
  });

  it('refuses a body over the route’s limit (413) and one that is not JSON-RPC (400), before any decision', async () => {
    const small = await PipelineWorld.create({ maxBodyBytes: 64 });
    try {
      const test = await admitted({ body: toolCall(1, 'list_todos', { padding: 'x'.repeat(100) }) });
      const refusal = await refusalOfStage(small.stages.readAndDecide, test.exchange);
      expect(refusal.code).toBe('payload_too_large');
      expect(test.exchange.decisions).toEqual([]);
    } finally {
      await small.close();
    }
    const notJson = await admitted({ body: '{"jsonrpc":"2.0","id":1,' });
    expect((await refusalOfStage(world.stages.readAndDecide, notJson.exchange)).code).toBe('parse_error');
  });
});
