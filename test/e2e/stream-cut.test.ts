import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { mcpRequest, toolCall } from '../support/mcp-http.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * An upstream that dies in the middle of a streamed answer must not look like a complete answer
 * to the client: the gateway cuts the client's response instead of ending it cleanly, filtered
 * or not. (A wire-level upstream: the point is the broken connection, which a real SDK server
 * does not produce on purpose.)
 */
describe.each([
  { label: 'filtered (the policy hides a tool)', policy: 'scopes: [todo:read]\ntools:\n  "*": [todo:read]\n  secret_tool: deny\n' },
  { label: 'passed straight through', policy: 'scopes: [todo:read]\ntools:\n  "*": [todo:read]\n' },
])('an upstream stream cut mid-way, $label', ({ policy }) => {
  let upstream: Server;
  let stack: Stack;
  let token: string;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}\n\n');
        setTimeout(() => res.socket?.destroy(), 50);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    stack = await startStack({ responseMode: 'json', policy, upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp` });
    token = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read' })).accessToken;
  }, 30_000);
  afterAll(async () => {
    await stack?.close();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  it('relays what came, then cuts the client off rather than ending cleanly', async () => {
    const answer = await mcpRequest(stack.mcpUrl, toolCall(1, 'slow_progress'), { token });
    expect(answer.status).toBe(200);
    const reader = answer.body!.getReader();
    let received = '';
    const outcome = await (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return 'ended cleanly';
          received += Buffer.from(value).toString();
        }
      } catch {
        return 'cut';
      }
    })();
    expect(received).toContain('notifications/progress');
    expect(outcome).toBe('cut');
  });
});
