import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerRefusal } from '../../../src/http/pipeline/refusals.js';
import { refusalOfStage, TestExchange } from '../../support/pipeline-exchange.js';
import { ALLOWED_ORIGIN, PipelineWorld, PUBLIC_URL } from '../../support/pipeline-services.js';

/** Streamable HTTP §Security Warning: Origin is checked (DNS rebinding); CORS preflights are answered before authentication. */
describe('origin stage', () => {
  let world: PipelineWorld;
  beforeAll(async () => {
    world = await PipelineWorld.create({ route: { forwardHeaders: ['x-tenant'] } });
  });
  afterAll(() => world.close());

  it('refuses a browser request from an origin not allowed, and lets the allowed ones (and none) through', async () => {
    const evil = new TestExchange({ headers: { origin: 'https://evil.example.test' } });
    expect((await refusalOfStage(world.stages.origin, evil.exchange)).code).toBe('origin_not_allowed');
    expect(evil.res.getHeader('access-control-allow-origin')).toBeUndefined();

    for (const origin of [ALLOWED_ORIGIN, PUBLIC_URL, undefined]) {
      const fine = new TestExchange({ headers: origin === undefined ? {} : { origin } });
      expect(world.stages.origin(fine.exchange)).toBeUndefined();
      expect(fine.exchange.answered).toBe(false);
    }
  });

  it('answers an allowed origin’s preflight itself: 204 with the CORS headers, and the stages after it do not run', async () => {
    const preflight = new TestExchange({
      method: 'OPTIONS',
      headers: { origin: ALLOWED_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, mcp-param-city' },
    });
    expect(world.stages.origin(preflight.exchange)).toBeUndefined();
    expect(preflight.exchange.answered).toBe(true);
    const answer = await preflight.finished();
    expect(answer.status).toBe(204);
    expect(answer.headers).toMatchObject({
      'access-control-allow-origin': ALLOWED_ORIGIN,
      'access-control-allow-methods': 'GET, POST, DELETE',
      'access-control-max-age': '600',
      vary: 'Origin',
      'x-request-id': preflight.record.id,
    });
    // The route's forwarded headers and the Mcp-Param-* header asked for are allowed by name.
    expect(answer.headers['access-control-allow-headers']!.split(', ')).toEqual(expect.arrayContaining(['authorization', 'x-tenant', 'mcp-param-city']));

    // The same preflight from an origin not allowed is refused, nothing written.
    const evil = new TestExchange({ method: 'OPTIONS', headers: { origin: 'https://evil.example.test', 'access-control-request-method': 'POST' } });
    expect((await refusalOfStage(world.stages.origin, evil.exchange)).code).toBe('origin_not_allowed');
    expect(evil.exchange.answered).toBe(false);
    expect(evil.wire.chunks).toEqual([]);
  });

  it('refuses a method Streamable HTTP does not use with 405 and Allow, and lets POST, GET and DELETE through', async () => {
    for (const method of ['PUT', 'PATCH', 'OPTIONS']) {
      // OPTIONS without an Origin is not a preflight: it is just a method the endpoint does not take.
      const test = new TestExchange({ method });
      const refusal = await refusalOfStage(world.stages.origin, test.exchange);
      expect(refusal.code).toBe('method_not_allowed');
      answerRefusal(world.services, test.exchange, refusal);
      const answer = await test.finished();
      expect(answer.status).toBe(405);
      expect(answer.headers.allow).toBe('POST, GET, DELETE');
    }
    for (const method of ['POST', 'GET', 'DELETE']) expect(world.stages.origin(new TestExchange({ method }).exchange)).toBeUndefined();
  });

  it('adds the CORS headers to an allowed origin’s actual request (and none without an Origin)', () => {
    const browser = new TestExchange({ headers: { origin: ALLOWED_ORIGIN } });
    world.stages.origin(browser.exchange);
    expect(browser.res.getHeader('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    expect(String(browser.res.getHeader('access-control-expose-headers'))).toContain('WWW-Authenticate');
    expect(String(browser.res.getHeader('access-control-expose-headers'))).toContain('Mcp-Session-Id');
    expect(browser.res.getHeader('vary')).toBe('Origin');
    expect(browser.wire.chunks).toEqual([]);

    const cli = new TestExchange();
    world.stages.origin(cli.exchange);
    expect(cli.res.getHeader('access-control-allow-origin')).toBeUndefined();
  });
});
