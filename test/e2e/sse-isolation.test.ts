import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setImmediate as nextTick } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { mcpRequest, openSession } from '../support/mcp-http.js';
import { startRouteGateway, type RouteGateway } from '../support/route-gateway.js';
import { parseSse, sseMessages, SseReader } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * Issue 6: "Two users with colliding JSON-RPC ids on concurrent SSE streams never receive each
 * other's responses; SSE events split at every byte boundary arrive intact."
 *
 * The first part runs two real users (tokens from the real IdP, sessions of their own) against
 * the real SDK upstream answering POSTs as SSE, all at once and with the same request ids; each
 * user's calls carry arguments and progress tokens naming that user, so any crossed event shows.
 * The second part is wire level: a bare node:http upstream writes its SSE answers one byte per
 * write, and the client must get every byte back except the hidden tools.
 */

const USERS = ['alice', 'bob'] as const;
type User = (typeof USERS)[number];
/** Both users use the same ids at the same time. */
const IDS = [7, 8, 9] as const;
/** Steps per user and id, different for each, so a result delivered to the wrong caller shows. */
const STEPS: Record<User, Record<7 | 9, number>> = { alice: { 7: 3, 9: 2 }, bob: { 7: 4, 9: 5 } };

const progressToken = (user: User, id: number, round: number) => `${user}-${id}-r${round}`;
const todoTitle = (user: User, round: number) => `${user}'s todo, round ${round}`;

function callFor(user: User, id: (typeof IDS)[number], round: number) {
  if (id === 8) return { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'add_todo', arguments: { title: todoTitle(user, round) } } };
  return {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'slow_progress', arguments: { steps: STEPS[user][id], delayMs: 15 }, _meta: { progressToken: progressToken(user, id, round) } },
  };
}

/** Exactly the messages `user` must receive for call `id` in `round`, in order. */
function expectedFor(user: User, id: (typeof IDS)[number], round: number): unknown[] {
  if (id === 8) {
    return [{ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: expect.stringMatching(new RegExp(`^Added #\\d+ ${todoTitle(user, round)}$`)) }] } }];
  }
  const steps = STEPS[user][id];
  return [
    ...Array.from({ length: steps }, (_, i) => ({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: progressToken(user, id, round), progress: i + 1, total: steps, message: `step ${i + 1}/${steps}` },
    })),
    { jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `Done after ${steps} steps` }] } },
  ];
}

const countOf = (messages: unknown[], method: string) => messages.filter((message) => (message as { method?: string }).method === method).length;

describe('two users with colliding JSON-RPC ids on concurrent SSE streams', () => {
  let stack: Stack;
  const tokens = {} as Record<User, string>;
  const sessions = {} as Record<User, string>;

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'sse' });
    for (const user of USERS) {
      tokens[user] = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read todo:write', subject: user })).accessToken;
      sessions[user] = await openSession(stack.mcpUrl, tokens[user]);
    }
    expect(sessions.alice).not.toBe(sessions.bob);
  });
  afterAll(async () => stack?.close());

  it('each receives only its own progress and results, round after round', async () => {
    for (let round = 1; round <= 3; round++) {
      const calls = USERS.flatMap((user) => IDS.map((id) => ({ user, id })));
      const answers = await Promise.all(
        calls.map(async ({ user, id }) => {
          const response = await mcpRequest(stack.mcpUrl, callFor(user, id, round), { token: tokens[user], sessionId: sessions[user] });
          return { user, id, status: response.status, contentType: response.headers.get('content-type'), text: await response.text() };
        }),
      );
      for (const { user, id, status, contentType, text } of answers) {
        expect(status, `${user} id ${id}`).toBe(200);
        expect(contentType).toContain('text/event-stream');
        expect(sseMessages(text), `${user} id ${id} round ${round}`).toEqual(expectedFor(user, id, round));
        const other = USERS.find((name) => name !== user)!;
        expect(text).not.toContain(`${other}-`);
        expect(text).not.toContain(`${other}'s`);
      }
    }
    // The upstream saw each call in its caller's session, and the requests really overlapped.
    const calls = stack.upstream.requests.filter((record) => record.rpcMethods.includes('tools/call'));
    expect(calls).toHaveLength(3 * USERS.length * IDS.length);
    for (const record of calls) {
      const args = JSON.stringify(record.body);
      const user = args.includes('alice') ? 'alice' : 'bob';
      expect(record.headers['mcp-session-id']).toBe(sessions[user]);
    }
  });

  it("keeps each session's GET stream to itself", async () => {
    const open = async (user: User) => {
      const response = await mcpRequest(stack.mcpUrl, undefined, { token: tokens[user], sessionId: sessions[user], method: 'GET' });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/event-stream');
      return new SseReader(response);
    };
    // Someone else's session id opens nothing, and reaches nothing.
    stack.upstream.clearLog();
    const stolen = await mcpRequest(stack.mcpUrl, undefined, { token: tokens.bob, sessionId: sessions.alice, method: 'GET' });
    expect(stolen.status).toBe(404);
    await stolen.text();
    expect(stack.upstream.requests).toHaveLength(0);

    const alice = await open('alice');
    const streams: SseReader[] = [alice];
    try {
      // Only alice's stream is open: what the upstream sends bob's session now goes nowhere.
      await stack.upstream.notifyAll();
      await alice.readUntil((messages) => countOf(messages, 'notifications/tools/list_changed') === 1 && countOf(messages, 'notifications/message') === 1);
      const bob = await open('bob');
      streams.push(bob);
      await stack.upstream.notifyAll();
      await alice.readUntil((messages) => countOf(messages, 'notifications/tools/list_changed') === 2 && countOf(messages, 'notifications/message') === 2);
      await bob.readUntil((messages) => countOf(messages, 'notifications/tools/list_changed') === 1 && countOf(messages, 'notifications/message') === 1);
      // Nothing more arrives on either: no event was delivered twice or to the other stream.
      await Promise.all([alice.readFor(200), bob.readFor(200)]);
      expect(alice.messages).toHaveLength(4);
      expect(bob.messages).toHaveLength(2);
      const gets = stack.upstream.requests.filter((record) => record.method === 'GET');
      expect(gets.map((record) => record.headers['mcp-session-id'])).toEqual([sessions.alice, sessions.bob]);
    } finally {
      await Promise.all(streams.map((stream) => stream.cancel()));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Wire level: events split at every byte boundary
// ---------------------------------------------------------------------------------------------

const TOOLS = [
  { name: 'list_todos', description: 'Liste — ✓ 🚀', inputSchema: { type: 'object' } },
  { name: 'secret_tool', description: 'jamais montré 秘密', inputSchema: { type: 'object' } },
  { name: 'add_todo', description: 'Ajouter ü', inputSchema: { type: 'object', properties: { title: { type: 'string' } } } },
  { name: 'unlisted_tool', description: 'in no policy', inputSchema: { type: 'object' } },
  { name: 'admin_stats', description: 'Statistik ß', inputSchema: { type: 'object' } },
];
const HIDDEN = new Set(['secret_tool', 'unlisted_tool']);

/** An SSE answer with comments, mixed line ends, multi-byte text and two tools lists (ids: the request's and another). */
function sseAnswer(requestId: unknown) {
  const list = (id: unknown) => ({ jsonrpc: '2.0', id, result: { tools: TOOLS, nextCursor: 'curseur-✓' } });
  const progress = { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p-1', progress: 1, total: 2, message: 'moitié — ½ 🚀' } };
  const tail = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'fin — 終' } };
  const parts = {
    head: [`: keep-alive ✓\r\n\r\n`, `event: message\r\nid: ev-1\r\ndata: ${JSON.stringify(progress)}\r\n\r\n`].join(''),
    firstList: { fields: ['id: ev-2', 'event: message'], message: list(requestId), terminator: '\n\n' },
    middle: `data: ${JSON.stringify(tail)}\r\r`,
    secondList: { fields: ['id: ev-3'], message: list('replayed-1'), terminator: '\r\n\r\n' },
    end: `event: message\ndata: ${JSON.stringify({ ...tail, params: { level: 'info', data: 'the end' } })}\n\n`,
  };
  const raw = (event: { fields: string[]; message: unknown; terminator: string }): string => `${event.fields.join('\r\n')}\r\ndata: ${JSON.stringify(event.message)}${event.terminator}`;
  /** What the gateway must pass on: the list event as sent, only its one data line's value filtered. */
  const filtered = (event: { fields: string[]; message: ReturnType<typeof list>; terminator: string }) => {
    const message = { ...event.message, result: { ...event.message.result, tools: TOOLS.filter((tool) => !HIDDEN.has(tool.name)) } };
    return raw({ ...event, message });
  };
  return {
    bytes: Buffer.from(parts.head + raw(parts.firstList) + parts.middle + raw(parts.secondList) + parts.end),
    expected: Buffer.from(parts.head + filtered(parts.firstList) + parts.middle + filtered(parts.secondList) + parts.end),
    head: parts.head,
    middle: parts.middle,
    end: parts.end,
  };
}

interface DripUpstream {
  readonly url: string;
  /** Method and request id of each request, in order. */
  readonly requests: { method: string; rpcId: unknown }[];
  close(): Promise<void>;
}

/** Answers every POST and GET with `sseAnswer`, one byte per write, yielding to the event loop between writes. */
async function startDripUpstream(): Promise<DripUpstream> {
  const requests: { method: string; rpcId: unknown }[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rpcId = req.method === 'POST' ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: unknown }).id : undefined;
    requests.push({ method: req.method ?? '', rpcId });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    for (const byte of sseAnswer(rpcId ?? 'get-stream').bytes) {
      if (res.destroyed) return;
      res.write(Buffer.from([byte]));
      await nextTick();
    }
    res.end();
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('SSE events split at every byte boundary', () => {
  let stack: Stack;
  let drip: DripUpstream;
  let gw: RouteGateway;
  let token: string;

  beforeAll(async () => {
    // The IdP of a stack; the gateway under test points at the dripping upstream.
    stack = await startStack({ responseMode: 'sse' });
    drip = await startDripUpstream();
    gw = await startRouteGateway({ issuer: stack.idp.issuer, upstreamUrl: drip.url });
    token = (await obtainAccessToken(stack.idp, { resource: gw.mcpUrl, scope: 'todo:read' })).accessToken;
  });
  afterAll(async () => {
    await gw?.close();
    await drip?.close();
    await stack?.close();
  });

  const received = async (response: Response) => {
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    return Buffer.from(await response.arrayBuffer());
  };

  it('arrive intact on a POST answer, hidden tools removed and every other byte as sent', async () => {
    const response = await mcpRequest(gw.mcpUrl, { jsonrpc: '2.0', id: 'list-1', method: 'tools/list' }, { token });
    const body = await received(response);
    const sample = sseAnswer('list-1');
    expect(body.toString('utf8')).toBe(sample.expected.toString('utf8'));
    expect(body.equals(sample.expected)).toBe(true);
    // Read as a client does: both lists lost exactly the hidden tools, everything else survived.
    const messages = sseMessages(body.toString('utf8')) as { id?: unknown; result?: { tools: { name: string }[]; nextCursor: string } }[];
    expect(messages.filter((message) => message.result).map((message) => [message.id, message.result!.tools.map((tool) => tool.name), message.result!.nextCursor])).toEqual([
      ['list-1', ['list_todos', 'add_todo', 'admin_stats'], 'curseur-✓'],
      ['replayed-1', ['list_todos', 'add_todo', 'admin_stats'], 'curseur-✓'],
    ]);
    expect(parseSse(body.toString('utf8')).map((event) => event.fields)).toEqual([[], ['event: message', 'id: ev-1'], ['id: ev-2', 'event: message'], [], ['id: ev-3'], ['event: message']]);
    expect(drip.requests.at(-1)).toEqual({ method: 'POST', rpcId: 'list-1' });
  });

  it('arrive intact on a GET stream too', async () => {
    const response = await mcpRequest(gw.mcpUrl, undefined, { token, method: 'GET' });
    const body = await received(response);
    expect(body.equals(sseAnswer('get-stream').expected)).toBe(true);
    expect(drip.requests.at(-1)).toEqual({ method: 'GET', rpcId: undefined });
  });

  it('arrive intact for two clients dripped to at once', async () => {
    const [first, second] = await Promise.all(
      ['c-1', 'c-2'].map(async (id) => ({ id, body: await received(await mcpRequest(gw.mcpUrl, { jsonrpc: '2.0', id, method: 'tools/list' }, { token })) })),
    );
    expect(first!.body.equals(sseAnswer('c-1').expected)).toBe(true);
    expect(second!.body.equals(sseAnswer('c-2').expected)).toBe(true);
  });

  it('are what the upstream wrote when nothing is hidden (sanity check of the sample)', () => {
    const sample = sseAnswer('x');
    expect(sample.bytes.equals(sample.expected)).toBe(false);
    expect(sample.bytes.toString('utf8').startsWith(sample.head)).toBe(true);
    expect(sample.expected.toString('utf8')).toContain(sample.middle);
    expect(sample.expected.toString('utf8').endsWith(sample.end)).toBe(true);
    expect(sample.expected.toString('utf8')).not.toMatch(/secret_tool|unlisted_tool/);
  });
});
