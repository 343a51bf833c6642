import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Refusal } from '../../../src/errors.js';
import { mcpEndpoint } from '../../../src/http/pipeline/endpoint.js';
import { runStages, type Stage } from '../../../src/http/pipeline/stage.js';
import { TestExchange } from '../../support/pipeline-exchange.js';
import { ALLOWED_ORIGIN, PipelineWorld } from '../../support/pipeline-services.js';

/** Stages that write their name to `ran` as they run, so a test sees which ran and when. */
function recorder(): { ran: string[]; step: (name: string) => Stage; later: (name: string) => Stage & { resolve: () => void } } {
  const ran: string[] = [];
  const step = (name: string): Stage => () => {
    ran.push(name);
  };
  const later = (name: string) => {
    let resolve!: () => void;
    const waited = new Promise<void>((done) => (resolve = done));
    const stage: Stage = () => {
      ran.push(name);
      return waited.then(() => {
        ran.push(`${name} done`);
      });
    };
    return Object.assign(stage, { resolve: () => resolve() });
  };
  return { ran, step, later };
}

describe('runStages', () => {
  it('runs a synchronous chain to its end in order and returns no promise', () => {
    const { ran, step } = recorder();
    const result = runStages([step('a'), step('b'), step('c')], new TestExchange().exchange);
    expect(result).toBeUndefined();
    expect(ran).toEqual(['a', 'b', 'c']);
  });

  it('waits only where a stage returns a promise: the stages after it run once it settles', async () => {
    const { ran, step, later } = recorder();
    const slow = later('b');
    const result = runStages([step('a'), slow, step('c')], new TestExchange().exchange);
    expect(result).toBeInstanceOf(Promise);
    // Stage c must not run while b is still waiting.
    await new Promise((done) => setImmediate(done));
    expect(ran).toEqual(['a', 'b']);
    slow.resolve();
    await result;
    expect(ran).toEqual(['a', 'b', 'b done', 'c']);
  });

  it('stops after a stage answers the request itself (synchronously or after waiting)', async () => {
    const { ran, step, later } = recorder();
    const answer: Stage = (exchange) => {
      ran.push('answer');
      exchange.answered = true;
    };
    const sync = new TestExchange().exchange;
    expect(runStages([step('a'), answer, step('c')], sync)).toBeUndefined();
    expect(ran).toEqual(['a', 'answer']);

    ran.length = 0;
    const slow = later('b');
    const answerLater: Stage = (exchange) => slow(exchange)!.then(() => void (exchange.answered = true));
    const running = runStages([answerLater, step('c')], new TestExchange().exchange);
    slow.resolve();
    await running;
    expect(ran).toEqual(['b', 'b done']);
  });

  it('stops at a thrown refusal: it reaches the caller and the stages after it never run', () => {
    const { ran, step } = recorder();
    const refuse: Stage = () => {
      throw new Refusal('origin_not_allowed', 'Origin not allowed');
    };
    let caught: unknown;
    try {
      runStages([step('a'), refuse, step('c')], new TestExchange().exchange);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(Refusal);
    expect((caught as Refusal).code).toBe('origin_not_allowed');
    expect(ran).toEqual(['a']);
  });

  it('passes an asynchronous rejection on to the caller, the stages after it not run', async () => {
    const { ran, step } = recorder();
    const failure = new Refusal('store_unavailable', 'Session store unavailable');
    const rejectLater: Stage = () => {
      ran.push('b');
      return new Promise((_, reject) => setImmediate(() => reject(failure)));
    };
    const running = runStages([step('a'), rejectLater, step('c')], new TestExchange().exchange);
    await expect(running).rejects.toBe(failure);
    expect(ran).toEqual(['a', 'b']);
  });

  it('passes on a rejection that is not a refusal as it is (a bug is not turned into an answer here)', async () => {
    const bug = new TypeError('boom');
    const running = runStages([() => Promise.reject(bug)], new TestExchange().exchange);
    await expect(running).rejects.toBe(bug);
  });
});

/** The endpoint runs the stages above and answers what they refuse, through answerRefusal. */
describe('mcpEndpoint', () => {
  let world: PipelineWorld;
  beforeAll(async () => {
    world = await PipelineWorld.create();
  });
  afterAll(() => world.close());

  it('answers a refusal thrown synchronously at once, without a promise, and names the route on the record', async () => {
    const handle = mcpEndpoint(world.route, world.deps);
    const test = new TestExchange({ headers: { origin: 'https://evil.example.test' } });
    expect(handle(test.req, test.res)).toBeUndefined();
    expect(test.record.route).toBe('todo');
    expect(test.record.refusal?.code).toBe('origin_not_allowed');
    expect((await test.finished()).status).toBe(403);
  });

  it('answers a refusal that comes after a wait through the promise it returns, which resolves', async () => {
    const handle = mcpEndpoint(world.route, world.deps);
    const test = new TestExchange({ headers: { origin: ALLOWED_ORIGIN, authorization: `Bearer ${await world.token({ aud: 'https://other.example.test/mcp' })}` } });
    const handling = handle(test.req, test.res);
    expect(handling).toBeInstanceOf(Promise);
    await handling;
    const answer = await test.finished();
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token"/);
    // The CORS headers set by the origin stage stay on the refusal, so a browser can read it.
    expect(answer.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
  });
});
