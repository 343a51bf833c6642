import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { mcpRequest, PROTOCOL_VERSION } from '../support/mcp-http.js';
import { startRouteGateway, type RouteGateway } from '../support/route-gateway.js';
import { answerStreaming, answerWith, startScriptedUpstream, type ScriptedUpstream } from '../support/scripted-upstream.js';
import { sseMessages } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * What an upstream answers, on a route whose policy hides tools (issue 23, items 6 to 9): a
 * quirky or compromised upstream must not get a hidden item to the client by writing an answer
 * the filter would read one way and a client another. The upstream is a bare node:http server
 * answering with the exact bytes each test writes; the example policy shows a todo:read caller
 * `list_todos` and hides `secret_tool` (denied) and `unlisted_tool` (no rule).
 *
 * Each attack has its positive control: the same answer made legal passes, filtered.
 */

const HIDDEN = 'secret_tool';
const VISIBLE = 'list_todos';
const LIST = `[{"name":"${HIDDEN}","inputSchema":{"type":"object"}},{"name":"${VISIBLE}","inputSchema":{"type":"object"}},{"name":"unlisted_tool"}]`;
const ONLY_VISIBLE = `[{"name":"${VISIBLE}","inputSchema":{"type":"object"}}]`;

type Json = Record<string, unknown>;

const listRequest = (id: string | number = 'list-1') => ({ jsonrpc: '2.0', id, method: 'tools/list' });
const toolNames = (message: unknown) => ((message as { result?: { tools?: { name: string }[] } }).result?.tools ?? []).map((tool) => tool.name);

/** The client's whole view of an answer: its text, and whether it ended cleanly or was cut. */
async function readToEnd(response: Response): Promise<{ text: string; cut: boolean }> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    try {
      const { done, value } = await reader.read();
      if (done) return { text, cut: false };
      text += decoder.decode(value, { stream: true });
    } catch {
      return { text, cut: true };
    }
  }
}

/** An SSE event carrying one message's JSON text exactly as given. */
const event = (json: string) => `event: message\ndata: ${json}\n\n`;
const progress = (n: number) => `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p","progress":${n}}}`;

/** A 502 with a JSON-RPC error that names nothing the upstream said. */
async function expectRefusedAnswer(response: Response): Promise<void> {
  expect(response.status).toBe(502);
  const text = await response.text();
  expect(text).not.toContain(HIDDEN);
  expect(JSON.parse(text)).toMatchObject({ jsonrpc: '2.0', error: { code: -32603 } });
}

describe('answers the filter cannot judge as a client reads them are refused', () => {
  let stack: Stack;
  let upstream: ScriptedUpstream;
  let gateway: RouteGateway;
  let token: string;

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'json' });
    upstream = await startScriptedUpstream();
    gateway = await startRouteGateway({ issuer: stack.idp.issuer, upstreamUrl: upstream.url });
    token = (await obtainAccessToken(stack.idp, { resource: gateway.mcpUrl, scope: 'todo:read' })).accessToken;
  });
  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
    await stack?.close();
  });
  beforeEach(() => {
    upstream.requests.length = 0;
  });

  describe('duplicate keys in an upstream answer (item 6)', () => {
    const attacks: [string, string][] = [
      ['a second tools member', `{"jsonrpc":"2.0","id":"list-1","result":{"tools":${LIST},"tools":${ONLY_VISIBLE}}}`],
      ['a second tools member spelled with escapes', `{"jsonrpc":"2.0","id":"list-1","result":{"tools":${LIST},"\\u0074ools":${ONLY_VISIBLE}}}`],
      ['a second result', `{"jsonrpc":"2.0","id":"list-1","result":{"tools":${LIST}},"result":{"tools":${ONLY_VISIBLE}}}`],
      ['a second name inside one tool', `{"jsonrpc":"2.0","id":"list-1","result":{"tools":[{"name":"${HIDDEN}","name":"${VISIBLE}"}]}}`],
      ['a second id', `{"jsonrpc":"2.0","id":"list-1","result":{"tools":${LIST}},"id":"other"}`],
    ];

    it.each(attacks)('refuses a JSON answer with %s (502), whichever copy a client would read', async (_label, answer) => {
      upstream.answer = answerWith('application/json', answer);
      await expectRefusedAnswer(await mcpRequest(gateway.mcpUrl, listRequest(), { token }));
      expect(upstream.requests).toHaveLength(1);
    });

    it('refuses the same duplicate in the answer to a tools/call, whose result is otherwise relayed as written', async () => {
      const call = { jsonrpc: '2.0', id: 'call-1', method: 'tools/call', params: { name: VISIBLE, arguments: {} } };
      upstream.answer = answerWith('application/json', `{"jsonrpc":"2.0","id":"call-1","result":{"tools":${LIST},"tools":[]}}`);
      await expectRefusedAnswer(await mcpRequest(gateway.mcpUrl, call, { token }));
      // Control: without the duplicate, the tool's result passes byte for byte.
      const legal = `{"jsonrpc":"2.0","id":"call-1","result":{"tools":${LIST}}}`;
      upstream.answer = answerWith('application/json', legal);
      const response = await mcpRequest(gateway.mcpUrl, call, { token });
      expect(response.status).toBe(200);
      expect(await response.text()).toBe(legal);
    });

    it('control: the same answers without a duplicate are relayed, filtered', async () => {
      for (const answer of [`{"jsonrpc":"2.0","id":"list-1","result":{"tools":${LIST}}}`, `{"jsonrpc":"2.0","id":"list-1","result":{"\\u0074ools":${LIST}}}`]) {
        upstream.answer = answerWith('application/json', answer);
        const response = await mcpRequest(gateway.mcpUrl, listRequest(), { token });
        expect(response.status).toBe(200);
        expect(toolNames(await response.json())).toEqual([VISIBLE]);
      }
      upstream.answer = answerWith('application/json', `{"jsonrpc":"2.0","id":"list-1","result":{"tools":[{"name":"${VISIBLE}","title":"${HIDDEN}"}]}}`);
      const oneTool = await mcpRequest(gateway.mcpUrl, listRequest(), { token });
      expect(oneTool.status).toBe(200);
      expect(toolNames(await oneTool.json())).toEqual([VISIBLE]);
    });

    it('cuts an SSE answer at the event with a duplicate key: events before it pass, nothing hidden does', async () => {
      const bad = `{"jsonrpc":"2.0","id":"list-1","result":{"tools":${LIST},"tools":${ONLY_VISIBLE}}}`;
      upstream.answer = answerStreaming('text/event-stream', [event(progress(1)), event(bad), event(progress(2))], { end: true });
      const response = await mcpRequest(gateway.mcpUrl, listRequest(), { token });
      expect(response.status).toBe(200);
      const { text, cut } = await readToEnd(response);
      expect(cut).toBe(true);
      expect(text).not.toContain(HIDDEN);
      expect(sseMessages(text)).toEqual([JSON.parse(progress(1))]);
      // The upstream is let go of with the client.
      await upstream.requests[0]!.closed;
    });

    it('control: the same SSE answer without the duplicate is filtered and ends cleanly', async () => {
      const legal = `{"jsonrpc":"2.0","id":"list-1","result":{"tools":${LIST}}}`;
      upstream.answer = answerStreaming('text/event-stream', [event(progress(1)), event(legal), event(progress(2))], { end: true });
      const response = await mcpRequest(gateway.mcpUrl, listRequest(), { token });
      const { text, cut } = await readToEnd(response);
      expect(cut).toBe(false);
      expect(sseMessages(text).map((message) => toolNames(message))).toEqual([[], [VISIBLE], []]);
    });
  });

  describe('answers that are not UTF-8 (item 7)', () => {
    const answer = `{"jsonrpc":"2.0","id":"list-1","result":{"tools":${LIST}}}`;
    /** A client that honours the charset, or sniffs UTF-16, reads these bytes as the answer. */
    const utf16 = Buffer.from(answer, 'utf16le');
    const utf16WithBom = Buffer.concat([Buffer.from([0xff, 0xfe]), utf16]);
    /** Latin-1: a byte that is not UTF-8 in a tool's description. */
    const latin1 = Buffer.from(`{"jsonrpc":"2.0","id":"list-1","result":{"tools":[{"name":"${VISIBLE}","description":"caf\u00e9"}]}}`, 'latin1');

    const expectNothingHidden = async (response: Response) => {
      const bytes = Buffer.from(await response.arrayBuffer());
      expect(bytes.toString('utf8')).not.toContain(HIDDEN);
      expect(bytes.toString('utf16le')).not.toContain(HIDDEN);
      return bytes;
    };

    it.each([
      ['labelled charset=utf-16le', 'application/json; charset=utf-16le', utf16],
      ['labelled charset="UTF-16"', 'application/json; charset="UTF-16"', utf16WithBom],
      ['in UTF-16 without a label (NUL bytes)', 'application/json', utf16],
      ['in UTF-16 with a byte-order mark and no label', 'application/json', utf16WithBom],
      ['in UTF-8 labelled charset=iso-8859-1', 'application/json; charset=iso-8859-1', Buffer.from(answer)],
      ['with bytes that are not UTF-8', 'application/json', latin1],
    ])('refuses a JSON list answer %s (502)', async (_label, contentType, bytes) => {
      upstream.answer = answerWith(contentType, bytes);
      const response = await mcpRequest(gateway.mcpUrl, listRequest(), { token });
      expect(response.status).toBe(502);
      const body = await expectNothingHidden(response);
      expect(JSON.parse(body.toString('utf8'))).toMatchObject({ jsonrpc: '2.0', error: { code: -32603 } });
    });

    it.each([
      ['labelled charset=utf-16le', 'text/event-stream; charset=utf-16le', Buffer.from(event(answer), 'utf16le')],
      ['labelled charset=utf-16le, in UTF-8 bytes', 'text/event-stream; charset=utf-16le', Buffer.from(event(answer))],
    ])('refuses an SSE answer %s before the stream opens (502)', async (_label, contentType, bytes) => {
      upstream.answer = answerWith(contentType, bytes);
      const response = await mcpRequest(gateway.mcpUrl, listRequest(), { token });
      expect(response.status).toBe(502);
      await expectNothingHidden(response);
    });

    it.each([
      ['in UTF-16 without a label', Buffer.from(event(answer), 'utf16le')],
      ['with a byte that is not UTF-8', Buffer.concat([Buffer.from(event(progress(1))), Buffer.from(event(answer.replace('"object"', '"obj\u00e9ct"')), 'latin1')])],
    ])('cuts an SSE answer %s: nothing hidden reaches the client', async (_label, bytes) => {
      upstream.answer = answerStreaming('text/event-stream', [bytes], { end: true });
      const response = await mcpRequest(gateway.mcpUrl, listRequest(), { token });
      expect(response.status).toBe(200);
      const reader = response.body!.getReader();
      const chunks: Buffer[] = [];
      let cut = false;
      for (;;) {
        try {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(Buffer.from(value));
        } catch {
          cut = true;
          break;
        }
      }
      const received = Buffer.concat(chunks);
      expect(received.toString('utf8')).not.toContain(HIDDEN);
      expect(received.toString('utf16le')).not.toContain(HIDDEN);
      expect(received.subarray(1).toString('utf16le')).not.toContain(HIDDEN);
      expect(cut).toBe(true);
    });

    it('control: a list answer labelled UTF-8 in any spelling, JSON or SSE, is relayed, filtered', async () => {
      for (const contentType of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json; charset=utf8']) {
        upstream.answer = answerWith(contentType, answer);
        const response = await mcpRequest(gateway.mcpUrl, listRequest(), { token });
        expect(response.status).toBe(200);
        expect(toolNames(await response.json())).toEqual([VISIBLE]);
      }
      upstream.answer = answerWith('text/event-stream; charset=UTF-8', event(answer));
      const response = await mcpRequest(gateway.mcpUrl, listRequest(), { token });
      expect(response.status).toBe(200);
      expect(sseMessages(await response.text()).map(toolNames)).toEqual([[VISIBLE]]);
    });
  });

  describe('answers to bodies without requests (item 8)', () => {
    const notification = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'x' } };
    const clientResponse = { jsonrpc: '2.0', id: 'srv-1', result: { action: 'accept' } };

    it('filters an SSE list answering a body of notifications only', async () => {
      upstream.answer = answerWith('text/event-stream', event(`{"jsonrpc":"2.0","id":"list-1","result":{"tools":${LIST}}}`));
      const response = await mcpRequest(gateway.mcpUrl, notification, { token });
      expect(response.status).toBe(200);
      expect(sseMessages(await response.text()).map(toolNames)).toEqual([[VISIBLE]]);
    });

    it('filters a list answering a body of client responses only, in JSON and SSE', async () => {
      const list = `{"jsonrpc":"2.0","id":"srv-1","result":{"tools":${LIST}}}`;
      upstream.answer = answerWith('application/json', list);
      const json = await mcpRequest(gateway.mcpUrl, clientResponse, { token });
      expect(json.status).toBe(200);
      expect(toolNames(await json.json())).toEqual([VISIBLE]);
      upstream.answer = answerWith('text/event-stream', event(list));
      const sse = await mcpRequest(gateway.mcpUrl, clientResponse, { token });
      expect(sseMessages(await sse.text()).map(toolNames)).toEqual([[VISIBLE]]);
    });

    it('filters a list under another id in an SSE answer to a notification and a tool call, and leaves the call result as written', async () => {
      const call = { jsonrpc: '2.0', id: 'call-1', method: 'tools/call', params: { name: VISIBLE, arguments: {} } };
      upstream.answer = answerWith('text/event-stream', event(`{"jsonrpc":"2.0","id":"other","result":{"tools":${LIST}}}`) + event(`{"jsonrpc":"2.0","id":"call-1","result":{"tools":${LIST}}}`));
      const response = await fetch(gateway.mcpUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-03-26' },
        body: JSON.stringify([notification, call]),
      });
      expect(response.status).toBe(200);
      const messages = sseMessages(await response.text()) as Json[];
      expect(messages.map((message) => [message.id, toolNames(message)])).toEqual([
        ['other', [VISIBLE]],
        ['call-1', [HIDDEN, VISIBLE, 'unlisted_tool']],
      ]);
    });

    it('filters every list in a batch carried by one SSE event (2025-03-26 lets streamed responses be batched)', async () => {
      const batch = `[{"jsonrpc":"2.0","id":"list-1","result":{"tools":${LIST}}},{"jsonrpc":"2.0","id":"list-2","result":{"tools":${LIST}}}]`;
      upstream.answer = answerWith('text/event-stream', event(batch));
      const response = await mcpRequest(gateway.mcpUrl, listRequest(), { token });
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).not.toContain(HIDDEN);
      expect((sseMessages(text)[0] as unknown[]).map(toolNames)).toEqual([[VISIBLE], [VISIBLE]]);
    });

    it("relays a tool's JSON result as written even when its bytes match a list answer filtered just before", async () => {
      const around = (id: string) => `{"jsonrpc":"2.0","id":"${id}","result":{"tools":${LIST}}}`;
      upstream.answer = answerWith('application/json', around('list-1'));
      const list = await mcpRequest(gateway.mcpUrl, listRequest(), { token });
      expect(toolNames(await list.json())).toEqual([VISIBLE]);
      upstream.answer = answerWith('application/json', around('call-2'));
      const call = await mcpRequest(gateway.mcpUrl, { jsonrpc: '2.0', id: 'call-2', method: 'tools/call', params: { name: VISIBLE, arguments: {} } }, { token });
      expect(await call.text()).toBe(around('call-2'));
    });
  });

  describe('stream requests answered with something other than a stream (item 9)', () => {
    const endlessJson = () => answerStreaming('application/json', ['[', `{"jsonrpc":"2.0","id":1,"result":{"tools":${LIST}}},`], { repeatLast: true, gapMs: 10 });
    const V2026 = '2026-07-28';
    /**
     * Without the rule a client would wait for the endless answer forever: the test gives up
     * after HANG_MS. A refusal "at once" must come well within it (AT_ONCE_MS), whatever the
     * machine's load; on a passing run neither is waited out.
     */
    const HANG_MS = 10_000;
    const AT_ONCE_MS = 5_000;
    const listen = {
      jsonrpc: '2.0',
      id: 'listen-1',
      method: 'subscriptions/listen',
      params: { notifications: { toolsListChanged: true }, _meta: { 'io.modelcontextprotocol/protocolVersion': V2026, 'io.modelcontextprotocol/clientCapabilities': {} } },
    };
    const postListen = () =>
      fetch(gateway.mcpUrl, {
        method: 'POST',
        signal: AbortSignal.timeout(HANG_MS),
        headers: { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': V2026, 'mcp-method': 'subscriptions/listen' },
        body: JSON.stringify(listen),
      });

    async function openSession(): Promise<string> {
      upstream.answer = (res: ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'session-1' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { protocolVersion: PROTOCOL_VERSION, capabilities: { tools: {} }, serverInfo: { name: 'scripted', version: '1' } } }));
      };
      const init = await mcpRequest(gateway.mcpUrl, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 't', version: '1' } } }, { token });
      expect(init.status).toBe(200);
      await init.text();
      return init.headers.get('mcp-session-id')!;
    }

    /** The upstream's request for the stream: let go of by the gateway (its connection closed) while it was still writing. */
    async function expectReleased(): Promise<void> {
      const request = upstream.requests[upstream.requests.length - 1]!;
      let timer: NodeJS.Timeout | undefined;
      // Kept, the upstream's request would never close (its answer is endless).
      const released = await Promise.race([request.closed.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), AT_ONCE_MS)))]);
      clearTimeout(timer);
      expect(released).toBe(true);
      expect(request.finished()).toBe(false);
    }

    it('answers a GET stream (2025 session) answered with an endless application/json body 502 at once, and releases the upstream', async () => {
      const sessionId = await openSession();
      upstream.answer = endlessJson();
      const started = performance.now();
      const response = await mcpRequest(gateway.mcpUrl, undefined, { token, sessionId, method: 'GET', signal: AbortSignal.timeout(HANG_MS) });
      const elapsed = performance.now() - started;
      expect(response.status).toBe(502);
      expect(elapsed).toBeLessThan(AT_ONCE_MS);
      await expectRefusedAnswer(response);
      expect(upstream.requests.at(-1)!.method).toBe('GET');
      await expectReleased();
    });

    it('answers a 2026-07-28 subscriptions/listen answered with an endless application/json body 502 at once, and releases the upstream', async () => {
      upstream.answer = endlessJson();
      const started = performance.now();
      const response = await postListen();
      const elapsed = performance.now() - started;
      expect(response.status).toBe(502);
      expect(elapsed).toBeLessThan(AT_ONCE_MS);
      await expectRefusedAnswer(response);
      await expectReleased();
    });

    it('control: the same GET and listen answered with an event stream are relayed as streams, filtered', async () => {
      const listEvent = event(`{"jsonrpc":"2.0","id":1,"result":{"tools":${LIST}}}`);
      const sessionId = await openSession();
      for (const open of [() => mcpRequest(gateway.mcpUrl, undefined, { token, sessionId, method: 'GET' }), postListen]) {
        upstream.answer = answerStreaming('text/event-stream', [listEvent, event(progress(1))], { end: true });
        const response = await open();
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toBe('text/event-stream');
        const { text, cut } = await readToEnd(response);
        expect(cut).toBe(false);
        expect(sseMessages(text).map(toolNames)).toEqual([[VISIBLE], []]);
      }
    });
  });
});

describe('notifications a principal must not hear are dropped from JSON answers too', () => {
  const POLICY = `
scopes: [todo:read]
tools:
  "*": [todo:read]
resources:
  "todo://*": [todo:read]
`;
  let stack: Stack;
  let upstream: ScriptedUpstream;
  let gateway: RouteGateway;
  let token: string;
  const updated = (uri: string) => `{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"${uri}"}}`;
  const pong = '{"jsonrpc":"2.0","id":"p-1","result":{}}';
  const post = (body: unknown) =>
    fetch(gateway.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-03-26' },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'json' });
    upstream = await startScriptedUpstream();
    gateway = await startRouteGateway({ issuer: stack.idp.issuer, upstreamUrl: upstream.url, policy: POLICY });
    token = (await obtainAccessToken(stack.idp, { resource: gateway.mcpUrl, scope: 'todo:read' })).accessToken;
  });
  afterAll(async () => {
    await gateway?.close();
    await upstream?.close();
    await stack?.close();
  });

  it('drops an update about a resource the principal may not read from a JSON batch, and keeps the response', async () => {
    upstream.answer = answerWith('application/json', `[${pong},${updated('secret://admin-notes')}]`);
    const response = await post([{ jsonrpc: '2.0', id: 'p-1', method: 'ping' }]);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).not.toContain('secret://');
    expect(JSON.parse(text)).toEqual([JSON.parse(pong)]);
  });

  it('refuses a JSON answer that is nothing but such an update (502), rather than relaying it', async () => {
    upstream.answer = answerWith('application/json', updated('secret://admin-notes'));
    const response = await post({ jsonrpc: '2.0', id: 'p-2', method: 'ping' });
    expect(response.status).toBe(502);
    expect(await response.text()).not.toContain('secret://');
  });

  it('control: an update about a resource the principal may read stays in the answer', async () => {
    upstream.answer = answerWith('application/json', `[${pong},${updated('todo://list')}]`);
    const response = await post([{ jsonrpc: '2.0', id: 'p-1', method: 'ping' }]);
    expect(JSON.parse(await response.text())).toEqual([JSON.parse(pong), JSON.parse(updated('todo://list'))]);
  });
});
