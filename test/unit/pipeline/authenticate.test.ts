import { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refusalOfStage, TestExchange } from '../../support/pipeline-exchange.js';
import { ISSUER, PipelineWorld } from '../../support/pipeline-services.js';

/**
 * MCP authorization §Token Handling: every request's token is validated, and must have been
 * issued for this resource (RFC 8707 audience). Keys are inline in the issuer's config: nothing
 * is fetched.
 */
describe('authenticate stage', () => {
  let world: PipelineWorld;
  beforeAll(async () => {
    world = await PipelineWorld.create();
  });
  afterAll(() => world.close());

  const withToken = (token: string | undefined, socket?: Socket) =>
    new TestExchange({ headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, ...(socket ? { socket } : {}) });

  it('refuses a request without a token (missing_token) and admits one with a valid token', async () => {
    const none = withToken(undefined);
    expect((await refusalOfStage(world.stages.authenticate, none.exchange)).code).toBe('missing_token');
    expect(none.exchange.principal).toBeUndefined();

    const valid = withToken(await world.token());
    await world.stages.authenticate(valid.exchange);
    expect(valid.exchange.principal).toMatchObject({ issuer: ISSUER, subject: 'user-42', clientId: 'agent-1' });
    expect([...valid.exchange.principal!.scopes]).toEqual(['todo:read']);
    // The access log learns who it was from the record.
    expect(valid.record.principal).toBe(valid.exchange.principal);
  });

  it('refuses a token issued for another resource (invalid_token, audience), the same token for this one admitted', async () => {
    const elsewhere = withToken(await world.token({ aud: 'https://other.example.test/mcp' }));
    const refusal = await refusalOfStage(world.stages.authenticate, elsewhere.exchange);
    expect(refusal.code).toBe('invalid_token');
    expect(refusal.details.tokenFailure).toBe('audience');
    expect(elsewhere.exchange.principal).toBeUndefined();
    expect(elsewhere.record.principal).toBeUndefined();

    const here = withToken(await world.token({ sub: 'user-audience' }));
    await world.stages.authenticate(here.exchange);
    expect(here.exchange.principal?.subject).toBe('user-audience');
  });

  it('admits the same token again on the same connection without a promise, the same principal', async () => {
    const socket = new Socket();
    const token = await world.token({ sub: 'user-again' });
    const first = withToken(token, socket);
    const verifying = world.stages.authenticate(first.exchange);
    // The first time, the signature is checked: that is asynchronous.
    expect(verifying).toBeInstanceOf(Promise);
    await verifying;

    const again = withToken(token, socket);
    expect(world.stages.authenticate(again.exchange)).toBeUndefined();
    expect(again.exchange.principal).toBe(first.exchange.principal);
    expect(again.record.principal).toBe(first.exchange.principal);

    // Another token on that connection is not taken for the first: it is verified on its own.
    const other = withToken(await world.token({ sub: 'user-other' }), socket);
    const otherVerifying = world.stages.authenticate(other.exchange);
    expect(otherVerifying).toBeInstanceOf(Promise);
    await otherVerifying;
    expect(other.exchange.principal?.subject).toBe('user-other');
  });

  it('refuses a cached token for another audience again: the cache never admits what verification refused', async () => {
    const socket = new Socket();
    const token = await world.token({ aud: 'https://other.example.test/mcp' });
    for (let attempt = 0; attempt < 2; attempt++) {
      const refusal = await refusalOfStage(world.stages.authenticate, withToken(token, socket).exchange);
      expect(refusal.details.tokenFailure).toBe('audience');
    }
  });
});
