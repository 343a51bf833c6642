import type { IncomingMessage, ServerResponse } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { Refusal } from '../../../src/errors.js';
import { answerRefusal } from '../../../src/http/pipeline/refusals.js';
import { Forwarder, type ForwardOptions } from '../../../src/proxy/forward.js';
import { upstreamHeaderLines } from '../../../src/proxy/headers.js';
import { upstreamAnswer, type RequestSpec, type TestExchange } from '../../support/pipeline-exchange.js';
import { PipelineWorld, rpc, toolCall, type WorldOptions, worldsClosedAfterAll } from '../../support/pipeline-services.js';

/**
 * The one stand-in in these tests: a Forwarder whose forward() records what the stage handed it
 * and resolves with a hand-built upstream answer instead of opening a connection. Forwarding
 * itself (node:http to a real upstream, timeouts, pooling) is covered end to end; here the
 * stage's own part is checked: the headers it sets, the audit, the credentials it drops.
 */
class RecordingForwarder extends Forwarder {
  readonly calls: { req: IncomingMessage; res: ServerResponse; options: ForwardOptions }[] = [];
  status = 200;

  override forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): Promise<IncomingMessage> {
    this.calls.push({ req, res, options });
    return Promise.resolve(upstreamAnswer(this.status, { headers: { 'content-type': 'application/json' }, body: { jsonrpc: '2.0', id: 1, result: {} } }));
  }
}

/** The header lines the real forwarder would send upstream for a recorded call, as name → values. */
function upstreamHeadersOf({ req, options }: RecordingForwarder['calls'][number]): Record<string, string[]> {
  const lines = upstreamHeaderLines(req.headers, options.forwardHeaders, options.body, options.gatewayHeaders, options.target.host, options.paramHeaders);
  const headers: Record<string, string[]> = {};
  for (let i = 0; i < lines.length; i += 2) (headers[lines[i]!] ??= []).push(lines[i + 1]!);
  return headers;
}

describe('forward stage', () => {
  let world: PipelineWorld;
  /** The recording forwarder a world's forward stage calls. */
  const recorderOf = (of: PipelineWorld) => of.forwarder as RecordingForwarder;
  const closedAfterAll = worldsClosedAfterAll();
  const worldWith = (options: WorldOptions = {}) => closedAfterAll({ forwarder: new RecordingForwarder(), ...options });
  beforeAll(async () => {
    world = await worldWith();
  });

  /** A request brought through every stage before forward, as the endpoint would. */
  const admitted = async (on: PipelineWorld, spec: RequestSpec): Promise<TestExchange> => {
    const test = await on.request(spec);
    await on.through(test, 'authenticate', 'routeScopes', 'session', 'readAndDecide', 'budgets');
    return test;
  };

  const SPOOFED = { 'x-request-id': 'client-chosen', 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.example.test', 'x-forwarded-proto': 'http' };

  it('hands the forwarder the gateway’s own headers (request id from the record, X-Forwarded-*), never the client’s token', async () => {
    const own = await worldWith();
    const test = await admitted(own, { body: toolCall(1, 'list_todos'), headers: SPOOFED });
    await own.stages.forward(test.exchange);

    expect(recorderOf(own).calls).toHaveLength(1);
    const call = recorderOf(own).calls[0]!;
    expect(call.options.gatewayHeaders).toEqual({
      'x-request-id': test.record.id,
      'x-forwarded-for': '203.0.113.9, 10.0.0.2',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'gateway.example.test',
    });
    expect(call.options.body).toBe(test.exchange.bytes);
    expect(call.options.target).toBe(own.route.config.upstream);
    expect(test.exchange.upstream?.statusCode).toBe(200);

    // What would go on the wire: the gateway's values only, and no Authorization at all.
    const sent = upstreamHeadersOf(call);
    expect(sent.authorization).toBeUndefined();
    expect(JSON.stringify(sent)).not.toContain(test.req.headers.authorization!.slice(7));
    expect(sent['x-request-id']).toEqual([test.record.id]);
    expect(sent['x-forwarded-for']).toEqual(['203.0.113.9, 10.0.0.2']);
    expect(sent['x-forwarded-host']).toEqual(['gateway.example.test']);
  });

  it('adds the route’s identity headers, which a client’s copies never replace', async () => {
    const identified = await worldWith({ route: { identityHeaders: { subject: 'x-user', client: 'x-client' } } });
    const test = await admitted(identified, { body: toolCall(1, 'list_todos'), headers: { 'x-user': 'admin', 'x-client': 'trusted-agent' } });
    await identified.stages.forward(test.exchange);
    const call = recorderOf(identified).calls[0]!;
    expect(call.options.gatewayHeaders).toMatchObject({ 'x-user': 'user-42', 'x-client': 'agent-1' });
    const sent = upstreamHeadersOf(call);
    expect(sent['x-user']).toEqual(['user-42']);
    expect(sent['x-client']).toEqual(['agent-1']);
  });

  it('audits the decisions once, with the upstream’s status, however the exchange ends after', async () => {
    const own = await worldWith();
    recorderOf(own).status = 201;
    const test = await admitted(own, { body: toolCall(1, 'list_todos') });
    await own.stages.forward(test.exchange);
    expect(own.audits).toHaveLength(1);
    expect(own.audits[0]).toMatchObject({ requestId: test.record.id, route: 'todo', sub: 'user-42', tool: 'list_todos', decision: 'allow', status: 201, upstreamStatus: 201 });
    expect(own.audits[0]!.upstreamMs).toEqual(expect.any(Number));
    expect(await own.metric('mcp_gateway_decisions_total', { route: 'todo', effect: 'allow' })).toBe(1);

    // The relay failing afterwards is answered, but the decisions are not audited again.
    answerRefusal(own.services, test.exchange, new Refusal('upstream_unreachable', 'Upstream answer could not be relayed'));
    expect(own.audits).toHaveLength(1);
    expect(await own.metric('mcp_gateway_decisions_total', { route: 'todo' })).toBe(1);
  });

  it('counts an upstream answering 5xx as a server error', async () => {
    const own = await worldWith();
    recorderOf(own).status = 503;
    await own.stages.forward((await admitted(own, { body: toolCall(1, 'list_todos') })).exchange);
    expect(await own.metric('mcp_gateway_upstream_errors_total', { route: 'todo', reason: 'server-error' })).toBe(1);
    expect(own.audits[0]).toMatchObject({ status: 503, upstreamStatus: 503 });
  });

  it('forwards the Mcp-Param-* headers of a 2026-07-28 call, checked against its body, and no other version’s', async () => {
    const meta = { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } };
    const modern = await admitted(world, {
      headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'list_todos', 'mcp-param-list': 'inbox' },
      body: rpc(1, 'tools/call', { name: 'list_todos', arguments: { list: 'inbox' }, ...meta }),
    });
    await world.stages.forward(modern.exchange);
    // Streamable HTTP 2026-07-28 §Custom Headers: intermediaries forward them.
    expect(upstreamHeadersOf(recorderOf(world).calls.at(-1)!)['mcp-param-list']).toEqual(['inbox']);

    const older = await admitted(world, { headers: { 'mcp-protocol-version': '2025-11-25', 'mcp-param-list': 'inbox' }, body: toolCall(2, 'list_todos', { list: 'inbox' }) });
    await world.stages.forward(older.exchange);
    const sent = upstreamHeadersOf(recorderOf(world).calls.at(-1)!);
    expect(sent['mcp-protocol-version']).toEqual(['2025-11-25']);
    expect(Object.keys(sent).filter((name) => name.startsWith('mcp-param-'))).toEqual([]);
  });

  it('drops the credentials of a long-lived request once forwarded, and keeps a plain POST’s', async () => {
    const credentials = { cookie: 'session=1' };
    const stream = await admitted(world, { method: 'GET', headers: credentials });
    const token = stream.req.headers.authorization!;
    await world.stages.forward(stream.exchange);
    expect(stream.req.headers.authorization).toBeUndefined();
    expect(stream.req.headers.cookie).toBeUndefined();
    expect(stream.req.rawHeaders).not.toContain(token);
    expect(stream.req.rawHeaders).not.toContain('session=1');

    // A 2026-07-28 subscriptions/listen is a stream too.
    const listen = await admitted(world, {
      headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
      body: rpc(1, 'subscriptions/listen', { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } }),
    });
    expect(listen.exchange.longLived).toBe(true);
    await world.stages.forward(listen.exchange);
    expect(listen.req.headers.authorization).toBeUndefined();

    const post = await admitted(world, { body: toolCall(1, 'list_todos'), headers: credentials });
    await world.stages.forward(post.exchange);
    expect(post.req.headers.authorization).toMatch(/^Bearer /);
    expect(post.req.headers.cookie).toBe('session=1');
  });
});
