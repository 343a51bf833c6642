import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { principalKey, type Principal } from '../../../src/auth/principal.js';
import { JSONRPC_INVALID_REQUEST, JSONRPC_UNSUPPORTED_PROTOCOL_VERSION } from '../../../src/errors.js';
import { answerRefusal } from '../../../src/http/pipeline/refusals.js';
import { META_PROTOCOL_VERSION } from '../../../src/mcp/message.js';
import { refusalOfStage, TestExchange, type RequestSpec } from '../../support/pipeline-exchange.js';
import { PipelineWorld, rpc } from '../../support/pipeline-services.js';

/**
 * Streamable HTTP §Protocol Version Header (unsupported → 400) and §Session Management (a session
 * belongs to the principal that opened it through the gateway; any other gets 404), and
 * 2026-07-28's statelessness (no sessions, POST only).
 */
describe('session stage', () => {
  let world: PipelineWorld;
  let owner: Principal;
  let stranger: Principal;
  beforeAll(async () => {
    world = await PipelineWorld.create();
    owner = await world.principal({ sub: 'owner' });
    stranger = await world.principal({ sub: 'stranger' });
    await world.sessions.bind('sess-owned', { principal: principalKey(owner), route: 'todo', protocolVersion: '2025-06-18' });
  });
  afterAll(() => world.close());

  const admitted = (principal: Principal, spec: RequestSpec) => {
    const test = new TestExchange({ ...spec, headers: { 'content-type': 'application/json', ...spec.headers } });
    test.exchange.principal = principal;
    return test;
  };

  it('refuses a GET in a version it does not support (400), and takes one it does', async () => {
    const unknown = admitted(owner, { method: 'GET', headers: { 'mcp-protocol-version': '2099-01-01' } });
    const refusal = await refusalOfStage(world.stages.session, unknown.exchange);
    expect(refusal.code).toBe('unsupported_protocol_version');
    expect(refusal.shape.status).toBe(400);

    const known = admitted(owner, { method: 'GET', headers: { 'mcp-protocol-version': '2025-06-18' } });
    expect(world.stages.session(known.exchange)).toBeUndefined();
    expect(known.exchange.protocolVersion).toBe('2025-06-18');
  });

  it('answers a POST in an unsupported version with -32022 and the request id when its body names the version in _meta', async () => {
    const body = rpc(7, 'tools/list', { _meta: { [META_PROTOCOL_VERSION]: '2099-01-01' } });
    const test = admitted(owner, { headers: { 'mcp-protocol-version': '2099-01-01' }, body });
    const refusal = await refusalOfStage(world.stages.session, test.exchange);
    expect(refusal.code).toBe('unsupported_protocol_version_error');
    answerRefusal(world.services, test.exchange, refusal);
    const answer = await test.finished();
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: { code: JSONRPC_UNSUPPORTED_PROTOCOL_VERSION, message: 'Unsupported protocol version: 2099-01-01', data: { supported: ['2026-07-28'], requested: '2099-01-01' } },
    });

    // Without a _meta version the body speaks the 2025 way: -32600, still under its id.
    const plain = admitted(owner, { headers: { 'mcp-protocol-version': '2099-01-01' }, body: rpc(8, 'tools/list') });
    const plainRefusal = await refusalOfStage(world.stages.session, plain.exchange);
    expect(plainRefusal.code).toBe('unsupported_protocol_version');
    expect(plainRefusal.details.rpcIds).toEqual([8]);
    expect(plainRefusal.shape.rpcCode).toBe(JSONRPC_INVALID_REQUEST);
  });

  it('refuses a 2026-07-28 GET with 405 (Allow: POST); a 2026-07-28 POST is stateless and its session id is dropped', async () => {
    const get = admitted(owner, { method: 'GET', headers: { 'mcp-protocol-version': '2026-07-28' } });
    const refusal = await refusalOfStage(world.stages.session, get.exchange);
    expect(refusal.code).toBe('method_not_allowed');
    expect(refusal.details.allow).toEqual(['POST']);

    const post = admitted(owner, { headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-session-id': 'sess-owned' }, body: rpc(1, 'tools/list') });
    expect(world.stages.session(post.exchange)).toBeUndefined();
    expect(post.exchange.stateless).toBe(true);
    expect(post.exchange.sessionId).toBeUndefined();
    expect(post.req.headers['mcp-session-id']).toBeUndefined();
  });

  it('refuses a session bound to another principal exactly as an unknown one (404), and binds the owner’s', async () => {
    for (const [principal, id] of [[stranger, 'sess-owned'], [owner, 'sess-unknown']] as const) {
      const test = admitted(principal, { method: 'GET', headers: { 'mcp-session-id': id } });
      const refusal = await refusalOfStage(world.stages.session, test.exchange);
      expect(refusal.code).toBe('session_not_found');
      expect(refusal.message).toBe('Session not found');
      expect(test.exchange.session).toBeUndefined();
    }

    // No version header: the version is the session's, not the 2025-03-26 assumed without one.
    const mine = admitted(owner, { method: 'GET', headers: { 'mcp-session-id': 'sess-owned' } });
    const looking = world.stages.session(mine.exchange);
    expect(looking).toBeInstanceOf(Promise);
    await looking;
    expect(mine.exchange.sessionId).toBe('sess-owned');
    expect(mine.exchange.session).toEqual({ principal: principalKey(owner), route: 'todo', protocolVersion: '2025-06-18' });
    expect(mine.exchange.protocolVersion).toBe('2025-06-18');
  });

  it('without a session id asks the store nothing and assumes 2025-03-26; mirrored 2026 headers are not forwarded in other versions', () => {
    const test = admitted(owner, { method: 'GET', headers: { 'mcp-method': 'tools/call', 'mcp-name': 'add_todo' } });
    expect(world.stages.session(test.exchange)).toBeUndefined();
    expect(test.exchange.protocolVersion).toBe('2025-03-26');
    expect(test.exchange.session).toBeUndefined();
    expect(test.req.headers['mcp-method']).toBeUndefined();
    expect(test.req.headers['mcp-name']).toBeUndefined();
  });
});
