import { beforeAll, describe, expect, it } from 'vitest';
import { answerRefusal } from '../../../src/http/pipeline/refusals.js';
import { refusalOfStage, type TestExchange } from '../../support/pipeline-exchange.js';
import { initialize, PipelineWorld, toolCall, worldsClosedAfterAll } from '../../support/pipeline-services.js';

const LIMITED_POLICY = `
scopes: [todo:read]
tools:
  list_todos: [todo:read]
  add_todo:
    scopes: [todo:read]
    rateLimit: { requests: 1, per: 1m }
`;

/**
 * What a request spends before it goes: rate-limit budgets (RFC 6585 §4: 429 with Retry-After)
 * and, for an initialize, room in the store to bind the session it will open (503 now rather
 * than an unbound session later).
 */
describe('budgets stage', () => {
  const worldWith = worldsClosedAfterAll();
  let limited: PipelineWorld;
  beforeAll(async () => {
    limited = await worldWith({ policy: LIMITED_POLICY });
  });

  /** A POST brought through the stages before budgets, as the endpoint would. */
  const decided = async (world: PipelineWorld, body: object, sub = 'user-42'): Promise<TestExchange> => {
    const test = await world.request({ body }, { sub });
    await world.through(test, 'authenticate', 'routeScopes', 'session', 'readAndDecide');
    return test;
  };

  it('refuses a call whose budget is spent with 429 and Retry-After; the first call, and another subject’s, pass', async () => {
    await limited.stages.budgets((await decided(limited, toolCall(1, 'add_todo'))).exchange);

    const second = await decided(limited, toolCall(2, 'add_todo'));
    const refusal = await refusalOfStage(limited.stages.budgets, second.exchange);
    expect(refusal.code).toBe('rate_limited');
    expect(refusal.details.retryAfterSeconds).toBeGreaterThanOrEqual(59);
    expect(refusal.details.rpcIds).toEqual([2]);
    answerRefusal(limited.services, second.exchange, refusal);
    const answer = await second.finished();
    expect(answer.status).toBe(429);
    expect(Number(answer.headers['retry-after'])).toBe(refusal.details.retryAfterSeconds);
    expect(JSON.parse(answer.body)).toMatchObject({ id: 2, error: { code: -32000 } });

    // Budgets are per subject: someone else's first call still goes.
    await limited.stages.budgets((await decided(limited, toolCall(3, 'add_todo'), 'user-else')).exchange);
  });

  it('refuses an initialize when the store has no room to bind its session (503), and passes one when it has', async () => {
    const full = await worldWith({ storeLimits: { maxEntries: 2 } });
    const cramped = await decided(full, initialize(1));
    const refusal = await refusalOfStage(full.stages.budgets, cramped.exchange);
    expect(refusal.code).toBe('store_unavailable');
    expect(refusal.details.retryAfterSeconds).toBe(1);
    answerRefusal(full.services, cramped.exchange, refusal);
    const answer = await cramped.finished();
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toMatchObject({ id: 1 });

    const roomy = await worldWith({});
    const fine = await decided(roomy, initialize(1));
    const asking = roomy.stages.budgets(fine.exchange);
    // The store is asked (a ping) before an initialize goes on.
    expect(asking).toBeInstanceOf(Promise);
    await asking;
  });

  it('asks the store nothing when the request has no budget and opens no session', async () => {
    const free = await worldWith({});
    const test = await decided(free, toolCall(1, 'list_todos'));
    const before = free.store.usage.entries;
    expect(free.stages.budgets(test.exchange)).toBeUndefined();
    expect(free.store.usage.entries).toBe(before);

    // Control: a call with a budget does go to the store, which then holds its budget.
    const counted = await decided(limited, toolCall(4, 'list_todos'));
    expect(limited.stages.budgets(counted.exchange)).toBeUndefined();
    const spending = await decided(limited, toolCall(5, 'add_todo'), 'user-fresh');
    const entries = limited.store.usage.entries;
    await limited.stages.budgets(spending.exchange);
    expect(limited.store.usage.entries).toBe(entries + 1);
  });
});
