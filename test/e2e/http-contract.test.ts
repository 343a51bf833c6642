import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { SseReader } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * The gateway's HTTP contract, spoken in raw HTTP so every status, header and body is
 * visible: each refusal is checked against the upstream's request log to prove it never
 * reached the upstream.
 */
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

describe('gateway HTTP contract', () => {
  let stack: Stack;
  let readToken: string;
  let aliceWrite: string;
  let bobRead: string;

  const token = async (scope: string, subject = 'alice') =>
    (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope, subject })).accessToken;

  const post = (body: unknown, headers: Record<string, string> = {}, bearer: string | null = readToken) =>
    fetch(stack.mcpUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...headers,
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  const initialize = async (bearer: string): Promise<string> => {
    const response = await post(INIT, {}, bearer);
    expect(response.status).toBe(200);
    await response.text();
    return response.headers.get('mcp-session-id')!;
  };

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'json', extraConfig: 'allowedOrigins: [https://app.example.com]' });
    readToken = await token('todo:read');
    aliceWrite = await token('todo:read todo:write');
    bobRead = await token('todo:read', 'bob');
  });
  afterAll(async () => stack?.close());
  beforeEach(() => stack.upstream.clearLog());

  describe('protected resource metadata (RFC 9728)', () => {
    it('is served at the path-inserted and the root well-known URL, CORS-readable', async () => {
      for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
        const response = await fetch(`${stack.gateway.url}${path}`, { headers: { origin: 'https://anywhere.example' } });
        expect(response.status).toBe(200);
        expect(response.headers.get('access-control-allow-origin')).toBe('*');
        expect(await response.json()).toEqual({
          resource: stack.mcpUrl,
          authorization_servers: [stack.idp.issuer],
          scopes_supported: ['todo:read', 'todo:write', 'todo:admin'],
          bearer_methods_supported: ['header'],
          resource_name: 'todo',
        });
      }
    });

    it('answers a CORS preflight', async () => {
      const response = await fetch(`${stack.gateway.url}/.well-known/oauth-protected-resource/mcp`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'mcp-protocol-version' },
      });
      expect(response.status).toBe(204);
      expect(response.headers.get('access-control-allow-headers')).toContain('MCP-Protocol-Version');
    });
  });

  describe('authentication', () => {
    it('challenges a request without a token with resource_metadata and the route scopes', async () => {
      const response = await post(INIT, {}, null);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(
        `Bearer scope="todo:read", resource_metadata="${stack.gateway.url}/.well-known/oauth-protected-resource/mcp"`,
      );
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('refuses a garbage token with invalid_token and a short description', async () => {
      const response = await post(INIT, {}, 'not.a.jwt');
      expect(response.status).toBe(401);
      const challenge = response.headers.get('www-authenticate')!;
      expect(challenge).toMatch(/^Bearer error="invalid_token", error_description="[^"]+"/);
      expect(challenge).toContain('resource_metadata=');
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('refuses a valid token issued for another resource (RFC 8707 audience)', async () => {
      const other = (await obtainAccessToken(stack.idp, { resource: 'http://127.0.0.1:1/other', scope: 'todo:read' })).accessToken;
      const response = await post(INIT, {}, other);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('never accepts a token in the query string', async () => {
      const response = await fetch(`${stack.mcpUrl}?access_token=${readToken}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify(INIT),
      });
      expect(response.status).toBe(401);
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('steps up a token without the route scopes', async () => {
      const otherScope = await token('other:scope');
      const response = await post(INIT, {}, otherScope);
      expect(response.status).toBe(403);
      expect(response.headers.get('www-authenticate')).toContain('error="insufficient_scope", error_description=');
      expect(response.headers.get('www-authenticate')).toContain('scope="todo:read"');
      expect(stack.upstream.requests).toHaveLength(0);
    });
  });

  describe('per-tool policy', () => {
    it('challenges with the held route scopes plus the missing ones, and forwards nothing', async () => {
      const session = await initialize(readToken);
      stack.upstream.clearLog();
      const response = await post(
        { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'admin_reset', arguments: {} } },
        { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' },
      );
      expect(response.status).toBe(403);
      expect(response.headers.get('www-authenticate')).toBe(
        `Bearer error="insufficient_scope", error_description="Additional scopes required: todo:admin", scope="todo:read todo:admin", resource_metadata="${stack.gateway.url}/.well-known/oauth-protected-resource/mcp"`,
      );
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('answers a denied tool with a JSON-RPC error carrying the request id', async () => {
      const session = await initialize(aliceWrite);
      stack.upstream.clearLog();
      const response = await post(
        { jsonrpc: '2.0', id: 'x-1', method: 'tools/call', params: { name: 'secret_tool', arguments: {} } },
        { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' },
        aliceWrite,
      );
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 'x-1', error: { code: -32602, message: 'Unknown tool: secret_tool' } });
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('audits every tool decision with reason and rule, and never logs tokens or arguments', async () => {
      const session = await initialize(aliceWrite);
      const headers = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
      const before = stack.logs.length;
      await post({ jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'secret_tool', arguments: { password: 'hunter2' } } }, headers, aliceWrite);
      await post({ jsonrpc: '2.0', id: 12, method: 'tools/call', params: { name: 'add_todo', arguments: { title: 'audited-arg' } } }, headers, aliceWrite);
      const decisions = stack.logs.slice(before).filter((entry) => entry.event === 'authz');
      expect(decisions).toEqual([
        expect.objectContaining({ tool: 'secret_tool', decision: 'deny', reason: 'tool-denied', rule: 'tools["secret_tool"]', sub: 'alice', route: 'todo' }),
        expect.objectContaining({ tool: 'add_todo', decision: 'allow', reason: 'tool-allowed', rule: 'tools["add_todo"]', sub: 'alice' }),
      ]);
      const everything = JSON.stringify(stack.logs);
      for (const secret of [aliceWrite, readToken, bobRead, 'hunter2', 'audited-arg']) expect(everything).not.toContain(secret);
    });

    it('filters tools/list in a JSON response', async () => {
      const session = await initialize(readToken);
      const response = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { result: { tools: { name: string }[] } };
      const names = body.result.tools.map((t) => t.name);
      expect(names).toContain('list_todos');
      expect(names).not.toContain('secret_tool');
      expect(names).not.toContain('unlisted_tool');
      expect(Number(response.headers.get('content-length'))).toBe(Buffer.byteLength(JSON.stringify(body)));
    });
  });

  describe('strict body parsing', () => {
    it('refuses malformed JSON with -32700 and forwards nothing', async () => {
      const response = await post('{"jsonrpc":"2.0",', { 'mcp-protocol-version': '2025-06-18' });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { code: number } }).error.code).toBe(-32700);
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('refuses duplicate keys that could smuggle a denied call', async () => {
      const response = await post(
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_todos","name":"secret_tool"}}',
        { 'mcp-protocol-version': '2025-06-18' },
      );
      expect(response.status).toBe(400);
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('refuses a batch for 2025-06-18 and later', async () => {
      for (const version of ['2025-06-18', '2025-11-25']) {
        const response = await post([{ jsonrpc: '2.0', id: 1, method: 'ping' }], { 'mcp-protocol-version': version });
        expect(response.status).toBe(400);
        expect(((await response.json()) as { error: { code: number } }).error.code).toBe(-32600);
      }
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('authorises every element of a 2025-03-26 batch and refuses it whole for one denied element', async () => {
      const response = await post(
        [
          { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_todos', arguments: {} } },
          { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'secret_tool', arguments: {} } },
        ],
        { 'mcp-protocol-version': '2025-03-26' },
      );
      expect(response.status).toBe(200);
      const body = (await response.json()) as { id: number; error: { code: number } }[];
      expect(body.map((m) => m.id)).toEqual([1, 2]);
      expect(body.every((m) => m.error.code === -32602)).toBe(true);
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('refuses case and whitespace variants of a policed method instead of treating them as another method', async () => {
      for (const method of ['Tools/Call', 'TOOLS/CALL', 'tools/call ', 'tools/\u0063all\u200b']) {
        const response = await post(
          { jsonrpc: '2.0', id: 1, method, params: { name: 'secret_tool', arguments: {} } },
          { 'mcp-protocol-version': '2025-06-18' },
        );
        expect(response.status).toBe(400);
      }
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('refuses a body in another charset, which an upstream could decode into a different call', async () => {
      const smuggled = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_todos","pad":"+ACIALAAi-name+ACIAOgAi-secret_tool"}}';
      for (const contentType of ['application/json; charset=utf-7', 'text/plain', 'application/x-www-form-urlencoded']) {
        const response = await post(smuggled, { 'content-type': contentType, 'mcp-protocol-version': '2025-06-18' });
        expect(response.status).toBe(415);
      }
      const compressed = await post(INIT, { 'content-encoding': 'gzip' });
      expect(compressed.status).toBe(415);
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('sends upstream only the MCP headers, never credentials, cookies or identity look-alikes', async () => {
      const response = await post(INIT, {
        cookie: 'sid=secret',
        'x-forwarded-user': 'admin',
        // Not from a trusted proxy: replaced by what the gateway saw itself.
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-proto': 'https',
        'x-request-id': 'client-chosen',
        mcp_session_id: 'someone-elses',
        'content-type': 'application/json; charset=UTF-8',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      });
      expect(response.status).toBe(200);
      const [forwarded] = stack.upstream.requests;
      expect(Object.keys(forwarded!.headers).sort()).toEqual(
        ['accept', 'connection', 'content-length', 'content-type', 'host', 'traceparent', 'user-agent',
          'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id'].sort(),
      );
      expect(forwarded!.headers['content-type']).toBe('application/json');
      expect(forwarded!.headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(forwarded!.headers['x-forwarded-proto']).toBe('http');
      // One id for the request, end to end: the client's answer and the upstream's request.
      expect(forwarded!.headers['x-request-id']).toBe(response.headers.get('x-request-id'));
      expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('refuses an unsupported MCP-Protocol-Version', async () => {
      const response = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-protocol-version': '1999-01-01' });
      expect(response.status).toBe(400);
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('refuses a session id outside visible ASCII or too long', async () => {
      for (const id of ['has space', 'x'.repeat(300)]) {
        const response = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-session-id': id, 'mcp-protocol-version': '2025-06-18' });
        expect(response.status).toBe(400);
      }
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('refuses a body over the size limit with 413', async () => {
      const response = await post({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(1_100_000) } });
      expect(response.status).toBe(413);
      expect(stack.upstream.requests).toHaveLength(0);
    });
  });

  describe('sessions', () => {
    it("refuses another principal's session with 404, as if unknown, and forwards nothing", async () => {
      const session = await initialize(readToken);
      stack.upstream.clearLog();
      const response = await post({ jsonrpc: '2.0', id: 3, method: 'tools/list' }, { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' }, bobRead);
      expect(response.status).toBe(404);
      expect(stack.upstream.requests).toHaveLength(0);
      // The owner still can.
      const owner = await post({ jsonrpc: '2.0', id: 4, method: 'tools/list' }, { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' });
      expect(owner.status).toBe(200);
    });

    it("falls back to the session's protocol version when a request omits the header", async () => {
      const session = await initialize(readToken); // initialize asked for 2025-06-18
      stack.upstream.clearLog();
      const batch = [{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', id: 2, method: 'ping' }];
      const response = await post(batch, { 'mcp-session-id': session });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain('2025-06-18');
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('refuses a session id the gateway never saw', async () => {
      const response = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-session-id': 'made-up', 'mcp-protocol-version': '2025-06-18' });
      expect(response.status).toBe(404);
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('forgets a session after DELETE', async () => {
      const session = await initialize(readToken);
      const deleted = await fetch(stack.mcpUrl, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${readToken}`, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' },
      });
      expect(deleted.status).toBe(200);
      stack.upstream.clearLog();
      const after = await post({ jsonrpc: '2.0', id: 5, method: 'ping' }, { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' });
      expect(after.status).toBe(404);
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it('relays the GET stream event by event', async () => {
      const session = await initialize(readToken);
      const initialized = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' });
      expect(initialized.status).toBe(202);
      const controller = new AbortController();
      const stream = await fetch(stack.mcpUrl, {
        headers: { authorization: `Bearer ${readToken}`, accept: 'text/event-stream', 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' },
        signal: controller.signal,
      });
      expect(stream.status).toBe(200);
      expect(stream.headers.get('content-type')).toContain('text/event-stream');
      // One read stays pending across the rounds (SseReader), so no chunk goes to a read the
      // loop stopped waiting for. The upstream notifies again each round until the stream, which
      // it may not have registered yet at the first, carries the notification.
      const reader = new SseReader(stream);
      const deadline = Date.now() + 5_000;
      while (!reader.text.includes('notifications/tools/list_changed') && !reader.ended && Date.now() < deadline) {
        await stack.upstream.notifyAll();
        await reader.readFor(200);
      }
      controller.abort();
      expect(reader.text).toContain('notifications/tools/list_changed');
    });
  });

  it('names every answer on the MCP route with its own X-Request-Id: refusals, preflights, lists, plain answers and streams', async () => {
    const session = await initialize(readToken);
    const mcp = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
    const refused = await post(INIT, {}, null);
    expect(refused.status).toBe(401);
    const preflight = await fetch(stack.mcpUrl, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    expect(preflight.status).toBe(204);
    const list = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, mcp);
    expect(list.status).toBe(200);
    const call = await post({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list_todos', arguments: {} } }, mcp);
    expect(call.status).toBe(200);
    const controller = new AbortController();
    const stream = await fetch(stack.mcpUrl, { headers: { authorization: `Bearer ${readToken}`, accept: 'text/event-stream', ...mcp }, signal: controller.signal });
    expect(stream.status).toBe(200);
    controller.abort();
    const ids = [refused, preflight, list, call, stream].map((response) => response.headers.get('x-request-id'));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // The id the upstream was sent is the one the client got back.
    const forwarded = stack.upstream.requests.filter((request) => request.headers['x-request-id'] === ids[3]);
    expect(forwarded).toHaveLength(1);
  });

  describe('origin validation (DNS rebinding)', () => {
    it('refuses a foreign Origin with 403 before anything else', async () => {
      const response = await post(INIT, { origin: 'https://evil.example' });
      expect(response.status).toBe(403);
      expect(stack.upstream.requests).toHaveLength(0);
    });

    it("accepts publicUrl's own origin and configured ones", async () => {
      for (const origin of [new URL(stack.gateway.url).origin, 'https://app.example.com']) {
        const response = await post(INIT, { origin });
        expect(response.status).toBe(200);
      }
    });
  });

  it('refuses other HTTP methods with 405 and Allow', async () => {
    const response = await fetch(stack.mcpUrl, { method: 'PUT', headers: { authorization: `Bearer ${readToken}` } });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST, GET, DELETE');
  });

  it('answers /healthz', async () => {
    const response = await fetch(`${stack.gateway.url}/healthz`);
    expect(response.status).toBe(200);
  });
});

describe('token lifetime on long-lived streams', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ responseMode: 'json', accessTokenTtlSeconds: 2 });
  });
  afterAll(async () => stack?.close());

  it('ends a GET stream cleanly when the token that opened it expires', async () => {
    const { accessToken } = await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read' });
    const headers = { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
    const init = await fetch(stack.mcpUrl, { method: 'POST', headers, body: JSON.stringify(INIT) });
    const session = init.headers.get('mcp-session-id')!;
    await init.text();
    await fetch(stack.mcpUrl, { method: 'POST', headers: { ...headers, 'mcp-session-id': session }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
    const opened = Date.now();
    const stream = await fetch(stack.mcpUrl, { headers: { ...headers, 'mcp-session-id': session, accept: 'text/event-stream' } });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    let ended = false;
    while (!ended) ended = (await reader.read()).done; // a clean end, not an error
    const exp = (JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;
    expect(Date.now()).toBeGreaterThanOrEqual(exp - 50);
    expect(Date.now() - opened).toBeLessThan(5_000);
  });
});

describe('upstream failures', () => {
  let hanging: Server;
  let hangingUrl: string;

  beforeAll(async () => {
    // Accepts requests and never answers: the gateway must give up at its timeout.
    hanging = createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/mcp`;
  });
  afterAll(async () => {
    hanging.closeAllConnections();
    await new Promise((resolve) => hanging.close(resolve));
  });

  const call = async (stack: Stack) => {
    const { accessToken } = await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read' });
    return fetch(stack.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify(INIT),
    });
  };

  it('answers 502 with a JSON-RPC error when the upstream is unreachable, and keeps serving', async () => {
    const stack = await startStack({ responseMode: 'json', upstreamUrl: 'http://127.0.0.1:1/mcp' });
    try {
      const response = await call(stack);
      expect(response.status).toBe(502);
      expect(((await response.json()) as { error: { code: number } }).error.code).toBe(-32603);
      expect((await fetch(`${stack.gateway.url}/healthz`)).status).toBe(200);
    } finally {
      await stack.close();
    }
  });

  it('answers 502 for an answer it cannot relay (a status code Node refuses to write), and keeps serving', async () => {
    // A raw TCP server speaking just enough HTTP to send status 099.
    const weird = createNetServer((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 099 Weird\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'));
    });
    await new Promise<void>((resolve) => weird.listen(0, '127.0.0.1', resolve));
    const stack = await startStack({ responseMode: 'json', upstreamUrl: `http://127.0.0.1:${(weird.address() as AddressInfo).port}/mcp` });
    try {
      const response = await call(stack);
      expect(response.status).toBe(502);
      expect((await fetch(`${stack.gateway.url}/healthz`)).status).toBe(200);
    } finally {
      await stack.close();
      await new Promise((resolve) => weird.close(resolve));
    }
  });

  it('answers 504 when the upstream does not answer in time', async () => {
    const stack = await startStack({ responseMode: 'json', upstreamUrl: hangingUrl, extraConfig: 'timeouts: { upstreamResponse: 300ms }' });
    try {
      const started = Date.now();
      const response = await call(stack);
      expect(response.status).toBe(504);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await stack.close();
    }
  });
});
