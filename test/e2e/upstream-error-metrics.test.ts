import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/logger.js';
import { closeLocalServers, listenLocal } from '../support/local-servers.js';
import { mcpRequest, toolCall } from '../support/mcp-http.js';
import { metricValue } from '../support/scrape.js';
import { sleep } from '../support/timing.js';

/**
 * `mcp_gateway_upstream_errors_total` (what the upstream-error alert and dashboard panel read)
 * counts what the upstream did wrong, by reason, and nothing a client did: an upstream that
 * answers 5xx, drops the connection, or does not answer in time each counts once; a client
 * that leaves before the answer does not. Also the health gauges of a healthy gateway.
 */
/**
 * The upstream's deadline. The client that leaves first must be gone before it passes (counted
 * from the forward): a second, so a stalled test process cannot make its leaving late.
 */
const RESPONSE_TIMEOUT_MS = 1_000;

describe('upstream error and health metrics', () => {
  let idp: DevIdp;
  let gateway: Gateway;
  let dir: string;
  let token: string;
  let mode: 'ok' | 'server-error' | 'reset' | 'hang' = 'ok';
  const received: IncomingMessage[] = [];
  /** Called as each request reaches the upstream (before its body is read). */
  let onReceived: (() => void) | undefined;
  const mcpUrl = () => `${gateway.url}/mcp`;
  const errors = async (reason: string) => (await metricValue(gateway.adminUrl!, 'mcp_gateway_upstream_errors_total', { route: 'raw', reason })) ?? 0;
  const call = (id: number, signal?: AbortSignal) => mcpRequest(mcpUrl(), toolCall(id, 'list_todos'), { token, ...(signal ? { signal } : {}) });

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: ['todo:read'] });
    // An upstream told by the test how to misbehave next.
    const upstreamUrl = await listenLocal(
      createServer((req: IncomingMessage, res: ServerResponse) => {
        received.push(req);
        onReceived?.();
        req.resume();
        req.on('end', () => {
          if (mode === 'hang') return;
          if (mode === 'reset') return void req.socket.destroy();
          const status = mode === 'server-error' ? 500 : 200;
          const body = mode === 'server-error' ? { jsonrpc: '2.0', id: 1, error: { code: -32603, message: 'boom' } } : { jsonrpc: '2.0', id: 1, result: { content: [] } };
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        });
      }),
    );
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-upstream-errors-'));
    await writeFile(join(dir, 'todo.yaml'), 'scopes: [todo:read]\ntools:\n  list_todos: [todo:read]\n');
    const config = await parseConfig(
      join(dir, 'gateway.yaml'),
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        'admin: { listen: { host: 127.0.0.1, port: 0 } }',
        `timeouts: { upstreamResponse: ${RESPONSE_TIMEOUT_MS}ms }`,
        'issuers:',
        `  - issuer: ${idp.issuer}`,
        'routes:',
        `  - { name: raw, path: /mcp, upstream: "${upstreamUrl}/mcp", policy: todo.yaml }`,
      ].join('\n'),
    );
    gateway = await startGateway(config, { logger: createLogger('silent') });
    token = (await obtainAccessToken(idp, { resource: mcpUrl(), scope: 'todo:read', subject: 'alice' })).accessToken;
  }, 30_000);

  afterAll(async () => {
    await gateway?.close();
    await closeLocalServers();
    await idp?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a healthy replica reports its store up and itself ready, as /readyz does', async () => {
    expect((await fetch(`${gateway.adminUrl}/readyz`)).status).toBe(200);
    expect(await metricValue(gateway.adminUrl!, 'mcp_gateway_ready')).toBe(1);
    expect(await metricValue(gateway.adminUrl!, 'mcp_gateway_store_up')).toBe(1);
  });

  it('an answer that went well counts no error; a 5xx answer counts as server-error', async () => {
    mode = 'ok';
    const ok = await call(1);
    expect(ok.status).toBe(200);
    await ok.text();
    expect(await errors('server-error')).toBe(0);
    mode = 'server-error';
    const failed = await call(2);
    expect(failed.status).toBe(500);
    await failed.text();
    expect(await errors('server-error')).toBe(1);
  });

  it('a dropped connection counts as unreachable (502)', async () => {
    mode = 'reset';
    const before = await errors('unreachable');
    const response = await call(3);
    expect(response.status).toBe(502);
    await response.text();
    expect(await errors('unreachable')).toBe(before + 1);
  });

  it('no answer in time counts as timeout (504); a client that leaves first counts as nothing', async () => {
    mode = 'hang';
    const [timeoutsBefore, unreachableBefore] = [await errors('timeout'), await errors('unreachable')];
    const controller = new AbortController();
    // The client leaves as soon as the upstream has the request (not at the next poll).
    let timer: NodeJS.Timeout | undefined;
    const reached = new Promise<void>((resolve, reject) => {
      onReceived = resolve;
      timer = setTimeout(() => reject(new Error('the upstream did not get the request within 5 s')), 5_000);
    });
    const abandoned = call(4, controller.signal).catch((error: unknown) => error);
    try {
      await reached;
    } finally {
      onReceived = undefined;
      clearTimeout(timer);
    }
    controller.abort();
    expect(await abandoned).toBeInstanceOf(Error);
    // Past the response timeout: the abandoned forward must not come back as a timeout either.
    await sleep(RESPONSE_TIMEOUT_MS + 300);
    expect([await errors('timeout'), await errors('unreachable')]).toEqual([timeoutsBefore, unreachableBefore]);
    // The same request left to wait is the upstream's timeout.
    const timedOut = await call(5);
    expect(timedOut.status).toBe(504);
    await timedOut.text();
    expect(await errors('timeout')).toBe(timeoutsBefore + 1);
    expect(await errors('unreachable')).toBe(unreachableBefore);
  });
});
