import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerRefusal } from '../../../src/http/pipeline/refusals.js';
import { refusalOfStage, TestExchange } from '../../support/pipeline-exchange.js';
import { PipelineWorld } from '../../support/pipeline-services.js';

/** Every request on the route needs the route's scopes; without them it is a step-up (MCP authorization §Scope Challenge Handling). */
describe('route-scopes stage', () => {
  let world: PipelineWorld;
  beforeAll(async () => {
    world = await PipelineWorld.create({ policy: 'scopes: [todo:read, todo:use]\ntools:\n  list_todos: [todo:read]\n' });
  });
  afterAll(() => world.close());

  it('refuses a token without the route scopes with insufficient_scope naming the scopes to ask for', async () => {
    const test = new TestExchange();
    test.exchange.principal = await world.principal({ scope: 'todo:read other:thing' });
    const refusal = await refusalOfStage(world.stages.routeScopes, test.exchange);
    expect(refusal.code).toBe('insufficient_scope');
    expect(refusal.details.missingScopes).toEqual(['todo:use']);
    // The challenge asks for every scope the route needs, the ones already held included.
    expect(refusal.details.scope).toEqual(expect.arrayContaining(['todo:read', 'todo:use']));

    answerRefusal(world.services, test.exchange, refusal);
    const answer = await test.finished();
    expect(answer.status).toBe(403);
    expect(answer.headers['www-authenticate']).toMatch(/^Bearer error="insufficient_scope"/);
    expect(answer.headers['www-authenticate']).toMatch(/scope="[^"]*todo:use[^"]*"/);
  });

  it('passes a token with the route scopes, synchronously', async () => {
    const test = new TestExchange();
    test.exchange.principal = await world.principal({ scope: 'todo:use todo:read' });
    expect(world.stages.routeScopes(test.exchange)).toBeUndefined();
  });
});
