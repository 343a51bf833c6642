import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { spawnGateway, type GatewayProcess } from '../support/gateway-process.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-servers.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { sleep, storeEvents, timed } from '../support/timing.js';

/**
 * The network path to Redis goes silent: no FIN, no RST, Redis itself fine and keeping its
 * data (a dead NAT entry, a node gone behind a load balancer). The kernel would wait many
 * minutes before calling such a connection dead; the gateway must not. Requests fail fast and
 * closed, the silent connection is dropped and a new one made through the same path, with no
 * restart of anything, and the rate-limit spends of requests that failed meanwhile are not
 * replayed onto the new connection (they would eat budget for requests that never happened).
 */
const PUBLIC_URL = 'http://localhost:8443';
const COMMAND_TIMEOUT_MS = 300;
/**
 * The longest any request may take while the path is silent: the command timeout plus slack for
 * a loaded machine. A hang is far longer: the kernel would keep the silent connection for
 * minutes, so a request waiting for it to answer would wait out the test.
 */
const NO_HANG_MS = 3_000;
const RECOVERY_TIMEOUT_MS = 10_000;

describe('Redis connection goes silent, then the gateway reconnects on its own', () => {
  let redis: RedisServerHandle;
  let proxy: TcpProxy;
  let idp: DevIdp;
  let stateful: SampleUpstream;
  let stateless: SampleUpstream;
  let dir: string;
  let gateway: GatewayProcess;
  let aliceTodo: string;
  let aliceLimited: string;
  const todo = () => `${gateway.url}/mcp`;
  const limited = () => `${gateway.url}/limited`;

  const storeLogs = (state: 'up' | 'down') => storeEvents(gateway.logs, state);
  const readyz = async () => {
    const response = await fetch(`${gateway.url}/readyz`);
    await response.text();
    return response.status;
  };
  const listTodos = (url: string, token: string, id: number, sessionId?: string) =>
    timed(mcpRequest(url, toolCall(id, 'list_todos'), { token, ...(sessionId ? { sessionId } : {}) }));

  beforeAll(async () => {
    redis = await startRedisServer();
    proxy = await startTcpProxy({ host: redis.host, port: redis.port });
    idp = await startDevIdp({ scopes: ['todo:read'] });
    [stateful, stateless] = await Promise.all([
      startSampleUpstream({ responseMode: 'json', stateless: false }),
      startSampleUpstream({ responseMode: 'json', stateless: true }),
    ]);
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-silent-'));
    await writeFile(join(dir, 'todo.yaml'), 'scopes: [todo:read]\ntools:\n  list_todos: [todo:read]\n');
    await writeFile(join(dir, 'limited.yaml'), 'scopes: [todo:read]\ntools:\n  list_todos:\n    scopes: [todo:read]\n    rateLimit: { requests: 3, per: 1m }\n');
    await writeFile(
      join(dir, 'gateway.yaml'),
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        `publicUrl: ${PUBLIC_URL}`,
        `store: { type: redis, url: "${proxy.url()}", commandTimeout: ${COMMAND_TIMEOUT_MS}ms, connectTimeout: 500ms }`,
        'issuers:',
        `  - issuer: ${idp.issuer}`,
        'routes:',
        `  - { name: todo, path: /mcp, upstream: "${stateful.url}", policy: todo.yaml }`,
        // onStoreError is left at its default: deny.
        `  - { name: limited, path: /limited, upstream: "${stateless.url}", policy: limited.yaml }`,
      ].join('\n'),
    );
    gateway = await spawnGateway(join(dir, 'gateway.yaml'));
    const token = (resource: string) => obtainAccessToken(idp, { resource, scope: 'todo:read', subject: 'alice' }).then((t) => t.accessToken);
    [aliceTodo, aliceLimited] = await Promise.all([token(`${PUBLIC_URL}/mcp`), token(`${PUBLIC_URL}/limited`)]);
  }, 30_000);

  afterAll(async () => {
    const code = await gateway?.stop();
    await Promise.all([stateful?.close(), stateless?.close(), idp?.close()]);
    await proxy?.close();
    await redis?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  it('fails fast and closed while silent, drops the dead connection, reconnects, keeps the session and replays no failed spend', async () => {
    // Before: a session on /mcp, and 2 of the 3 list_todos allowed per minute spent on /limited.
    const sessionId = await openSession(todo(), aliceTodo);
    for (const id of [1, 2]) expect((await listTodos(limited(), aliceLimited, id)).status).toBe(200);
    const connectionsBefore = proxy.connections();
    expect(connectionsBefore).toBeGreaterThanOrEqual(1);
    const downBefore = storeLogs('down').length;
    const upBefore = storeLogs('up').length;
    const logsBefore = gateway.logs.length;

    // The path goes silent. All six requests go out together, so each reaches the store before
    // the first timeout opens the breaker: the 5 rate-limit spends are written onto the silent
    // connection (unanswered), which is what a replay after the reconnect would resend.
    proxy.silence();
    const silencedAt = performance.now();
    stateful.clearLog();
    stateless.clearLog();
    const [sessionBound, ...spends] = await Promise.all([
      listTodos(todo(), aliceTodo, 10, sessionId),
      ...[11, 12, 13, 14, 15].map((id) => listTodos(limited(), aliceLimited, id)),
    ]);

    expect(sessionBound.status).toBe(503);
    expect(sessionBound.retryAfter).toBe('1');
    expect(JSON.parse(sessionBound.body)).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
    expect(sessionBound.ms).toBeLessThan(NO_HANG_MS);
    expect(stateful.requests).toHaveLength(0);

    expect(spends.map((s) => s.status)).toEqual([503, 503, 503, 503, 503]);
    for (const spend of spends) {
      expect(spend.retryAfter).toBe('1');
      expect(spend.ms).toBeLessThan(NO_HANG_MS);
    }
    // At least one spend really waited on Redis (rather than the open breaker): it was on the wire.
    expect(Math.max(...spends.map((s) => s.ms))).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 50);
    expect(stateless.requests).toHaveLength(0);

    // Recovery without restarting anything: socketTimeout drops the silent connection and the
    // client reconnects through the proxy, which forwards new connections again.
    const deadline = Date.now() + RECOVERY_TIMEOUT_MS;
    let ready = 0;
    while ((ready = await readyz()) !== 200) {
      if (Date.now() > deadline) throw new Error(`/readyz still ${ready} ${RECOVERY_TIMEOUT_MS} ms after the silence`);
      await sleep(100);
    }
    // socketTimeout (1 s here) drops the dead connection; the reconnect follows at once.
    expect(performance.now() - silencedAt).toBeLessThan(5_000);
    expect(proxy.connections()).toBeGreaterThan(connectionsBefore);

    // Redis kept its data: the same session works, and reaches the upstream.
    const again = await listTodos(todo(), aliceTodo, 20, sessionId);
    expect(again.status).toBe(200);
    expect(stateful.requests.filter((r) => r.headers['mcp-session-id'] === sessionId)).toHaveLength(1);

    // Exactly one call is left of the budget: the 5 failed spends were not replayed after the
    // reconnect (had they been, this first call would already be 429).
    const third = await listTodos(limited(), aliceLimited, 21);
    expect(third.status).toBe(200);
    const fourth = await listTodos(limited(), aliceLimited, 22);
    expect(fourth.status).toBe(429);
    expect(Number(fourth.retryAfter)).toBeGreaterThan(0);
    expect(stateless.requests).toHaveLength(1);

    // One outage, logged once each way, in that order, by the same process. The gateway logged
    // 'up' before /readyz said 200, but its stdout reaches us on its own time.
    await vi.waitFor(() => expect(storeLogs('up').length).toBeGreaterThan(upBefore), { timeout: 5_000 });
    expect(storeLogs('down')).toHaveLength(downBefore + 1);
    expect(storeLogs('up')).toHaveLength(upBefore + 1);
    const since = gateway.logs.slice(logsBefore).filter((entry) => entry.event === 'store').map((entry) => entry.state);
    expect(since).toEqual(['down', 'up']);
    expect(gateway.child.exitCode).toBeNull();

  }, 20_000);
});
