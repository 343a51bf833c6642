import { beforeAll, describe, expect, it } from 'vitest';
import { principalKey } from '../../../src/auth/principal.js';
import type { Refusal } from '../../../src/errors.js';
import { answerRefusal } from '../../../src/http/pipeline/refusals.js';
import type { SessionBinding } from '../../../src/mcp/sessions.js';
import { nextTurn, refusalOfStage, upstreamAnswer, type MessageSpec, type TestExchange } from '../../support/pipeline-exchange.js';
import { initialize, PipelineWorld, rpc, worldsClosedAfterAll } from '../../support/pipeline-services.js';

const TOOLS = [
  { name: 'list_todos', inputSchema: { type: 'object' } },
  { name: 'secret_tool', inputSchema: { type: 'object' } },
  { name: 'unlisted_tool', inputSchema: { type: 'object' } },
];
const toolsList = (id: number) => ({ jsonrpc: '2.0', id, result: { tools: TOOLS } });
const namesIn = (answer: { result: { tools: { name: string }[] } }) => answer.result.tools.map((tool) => tool.name);

/**
 * The upstream's answer, a hand-built IncomingMessage with its bytes pushed in as Node's parser
 * would, relayed into a real ServerResponse on an in-memory socket: lists filtered to what the
 * principal may use, sessions bound before the client learns their id, failures answered 502.
 */
describe('relay stage', () => {
  const worldWith = worldsClosedAfterAll();
  let world: PipelineWorld;
  beforeAll(async () => {
    world = await worldWith();
  });

  /** A request through every stage before forward, then the upstream's answer as forward would leave it. */
  const answered = async (on: PipelineWorld, body: object, status: number, answer: MessageSpec, claims: Record<string, unknown> = {}): Promise<TestExchange> => {
    const test = await on.request({ body }, claims);
    await on.through(test, 'authenticate', 'routeScopes', 'session', 'readAndDecide', 'budgets');
    test.exchange.upstream = upstreamAnswer(status, answer);
    return test;
  };

  /** A GET (the server's stream) through every stage before forward. */
  const listening = async (on: PipelineWorld): Promise<TestExchange> => {
    const test = await on.request({ method: 'GET' });
    await on.through(test, 'authenticate', 'routeScopes', 'session', 'readAndDecide', 'budgets');
    return test;
  };

  it('relays a tools list with only the tools the principal may use, under the gateway’s request id', async () => {
    const test = await answered(world, rpc(1, 'tools/list'), 200, { headers: { 'content-type': 'application/json', 'x-request-id': 'upstream-own' }, body: toolsList(1) });
    expect(world.stages.relay(test.exchange)).toBeUndefined();
    const answer = await test.finished();
    expect(answer.status).toBe(200);
    expect(namesIn(JSON.parse(answer.body))).toEqual(['list_todos']);
    expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
    expect(answer.headers['x-request-id']).toBe(test.record.id);

    // Control: where the policy hides no tool, the same answer passes whole.
    const open = await worldWith({ policy: 'scopes: [todo:read]\ntools:\n  "*": [todo:read]\n' });
    const plain = await answered(open, rpc(1, 'tools/list'), 200, { headers: { 'content-type': 'application/json' }, body: toolsList(1) });
    open.stages.relay(plain.exchange);
    expect(namesIn(JSON.parse((await plain.finished()).body))).toEqual(['list_todos', 'secret_tool', 'unlisted_tool']);
  });

  it('filters a list answered as an event stream too, and ends the stream when the upstream does', async () => {
    const events = [Buffer.from(`event: message\ndata: ${JSON.stringify(toolsList(2))}\n\n`)];
    const test = await answered(world, rpc(2, 'tools/list'), 200, { headers: { 'content-type': 'text/event-stream' }, body: events });
    world.stages.relay(test.exchange);
    const answer = await test.finished();
    expect(answer.headers['content-type']).toBe('text/event-stream');
    expect(answer.complete).toBe(true);
    const data = /^data: (.*)$/m.exec(answer.body)![1]!;
    expect(namesIn(JSON.parse(data))).toEqual(['list_todos']);
    await test.hangUp();
  });

  it('reads a list answer still arriving in parts, then filters it whole', async () => {
    const whole = Buffer.from(JSON.stringify(toolsList(4)));
    const test = await answered(world, rpc(4, 'tools/list'), 200, { headers: { 'content-type': 'application/json' }, body: whole.subarray(0, 20), arriving: true });
    const relaying = world.stages.relay(test.exchange);
    expect(relaying).toBeInstanceOf(Promise);
    await nextTurn();
    expect(test.wire.chunks).toEqual([]);
    const upstream = test.exchange.upstream!;
    upstream.push(whole.subarray(20));
    upstream.complete = true;
    upstream.push(null);
    await relaying;
    expect(namesIn(JSON.parse((await test.finished()).body))).toEqual(['list_todos']);
  });

  it('keeps a GET stream open and registered while the client listens, and releases the upstream when it leaves', async () => {
    const streams = () => world.metric('mcp_gateway_sse_streams_open', { route: 'todo' });
    const get = await listening(world);
    get.exchange.upstream = upstreamAnswer(200, { headers: { 'content-type': 'text/event-stream' }, body: 'data: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n', arriving: true });
    expect(world.stages.relay(get.exchange)).toBeUndefined();
    await nextTurn();
    expect(get.written).toMatchObject({ status: 200, complete: false });
    expect(get.written!.body).toContain('notifications/message');
    expect(await streams()).toBe(1);

    await get.hangUp();
    expect(get.exchange.upstream.destroyed).toBe(true);
    expect(await streams()).toBe(0);
  });

  it('refuses a GET stream the upstream answers with JSON, which would be read whole, forever (the test above is its control)', async () => {
    const get = await listening(world);
    get.exchange.upstream = upstreamAnswer(200, { headers: { 'content-type': 'application/json' }, body: '{}', arriving: true });
    expect((await refusalOfStage(world.stages.relay, get.exchange)).code).toBe('upstream_unreachable');
    expect(get.exchange.upstream.destroyed).toBe(true);
    expect(get.wire.chunks).toEqual([]);
  });

  it('binds a session the upstream assigns to the principal before the client sees a byte of the answer', async () => {
    const principal = await world.principal({ sub: 'opener' });
    const opened = await answered(world, initialize(1, '2025-06-18'), 200, {
      headers: { 'content-type': 'application/json', 'mcp-session-id': 'sess-new' },
      body: { jsonrpc: '2.0', id: 1, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'up', version: '1' } } },
    }, { sub: 'opener' });
    // Looked up at the moment the first byte reaches the client: by then the binding must exist.
    let atFirstByte: Promise<SessionBinding | Refusal> | undefined;
    opened.wire.onWrite = () => {
      atFirstByte ??= world.sessions.authorize('todo', 'sess-new', principalKey(principal)).catch((refusal: Refusal) => refusal);
    };
    const relaying = world.stages.relay(opened.exchange);
    expect(relaying).toBeInstanceOf(Promise);
    await relaying;
    const answer = await opened.finished();
    expect(answer.headers['mcp-session-id']).toBe('sess-new');
    expect(await atFirstByte).toEqual({ principal: principalKey(principal), route: 'todo', protocolVersion: '2025-06-18' });

    // Bound to that principal alone: anyone else presenting the id is told it does not exist.
    const stranger = await world.principal({ sub: 'stranger' });
    await expect(world.sessions.authorize('todo', 'sess-new', principalKey(stranger))).rejects.toMatchObject({ code: 'session_not_found' });
  });

  it('refuses a session id the client could never send back, writing nothing of the answer', async () => {
    const test = await answered(world, initialize(1), 200, { headers: { 'content-type': 'application/json', 'mcp-session-id': 'bad id' }, body: { jsonrpc: '2.0', id: 1, result: {} } });
    const refusal = await refusalOfStage(world.stages.relay, test.exchange);
    expect(refusal.code).toBe('upstream_unreachable');
    expect(test.wire.chunks).toEqual([]);
    expect(test.exchange.upstream!.destroyed).toBe(true);
  });

  it('turns a failure that is not a refusal into upstream_unreachable (502), and logs it', async () => {
    // A status Node's parser would never hand over, standing in for any fault while relaying:
    // writeHead throws a RangeError, not a Refusal.
    const broken = await answered(world, rpc(3, 'ping'), 1000, { headers: { 'content-type': 'application/json' }, body: { jsonrpc: '2.0', id: 3, result: {} } });
    const refusal = await refusalOfStage(world.stages.relay, broken.exchange);
    expect(refusal.code).toBe('upstream_unreachable');
    expect(world.logs).toContainEqual(expect.objectContaining({ msg: 'relay failed', route: 'todo', requestId: broken.record.id, err: expect.objectContaining({ type: 'RangeError' }) }));

    answerRefusal(world.services, broken.exchange, refusal);
    const answer = await broken.finished();
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body)).toMatchObject({ id: 3, error: { code: -32603 } });
    expect(await world.metric('mcp_gateway_upstream_errors_total', { route: 'todo', reason: 'unreachable' })).toBe(1);

    // Control: the same answer with a real status is relayed as it is.
    const fine = await answered(world, rpc(3, 'ping'), 200, { headers: { 'content-type': 'application/json' }, body: { jsonrpc: '2.0', id: 3, result: {} } });
    world.stages.relay(fine.exchange);
    expect(JSON.parse((await fine.finished()).body)).toEqual({ jsonrpc: '2.0', id: 3, result: {} });
  });
});
