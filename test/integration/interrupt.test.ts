import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { initializeRequest, mcpRequest } from '../support/mcp-http.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * Gateway.interrupt(), what a fatal error calls before the process exits: a request still in
 * flight (its upstream has not answered) gets its access line then, marked aborted, instead of
 * none at all.
 */
describe('interrupting the requests in flight', () => {
  let upstream: Server;
  let stack: Stack;
  const arrived: IncomingMessage[] = [];

  beforeAll(async () => {
    // An upstream that takes requests and never answers them.
    upstream = createServer((req) => void arrived.push(req));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    stack = await startStack({ responseMode: 'json', upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`, extraConfig: 'timeouts: { upstreamResponse: 30s }' });
  });
  afterAll(async () => {
    await stack?.close();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it('writes the access line of a request still waiting for its upstream, marked aborted', async () => {
    const token = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read' })).accessToken;
    const pending = mcpRequest(stack.mcpUrl, initializeRequest(), { token }).catch((error: unknown) => error);
    await expect.poll(() => arrived.length, { timeout: 5_000 }).toBe(1);
    const accessLines = () => stack.logs.filter((line) => line.event === 'access' && line.path === '/mcp');
    // Control: in flight, nothing logged yet.
    expect(accessLines()).toEqual([]);

    stack.gateway.interrupt();
    expect(accessLines()).toMatchObject([{ method: 'POST', aborted: true, sub: 'alice' }]);
    // The client's request was cut, not answered; the socket's own 'close' logs nothing more.
    expect(await pending).toBeInstanceOf(Error);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(accessLines()).toHaveLength(1);
  });
});
