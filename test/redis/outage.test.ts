import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { spawnGateway, type GatewayProcess } from '../support/gateway-process.js';
import { initializeRequest, mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-servers.js';
import { sleep, storeEvents, timed, waitFor } from '../support/timing.js';

/**
 * Redis slow, then gone, then back, under a real gateway process: what must hold is decided
 * here. Session-bound traffic fails closed (503 + Retry-After, never forwarded unbound), rate
 * limits follow onStoreError, no request waits past the command timeout, readiness reports
 * the outage, one log line says what happened, and the same process recovers on its own.
 */
const PUBLIC_URL = 'http://localhost:8443';
const COMMAND_TIMEOUT_MS = 300;
/**
 * The longest any request may take while Redis misbehaves: the command timeout plus slack for a
 * loaded machine. A hang is far longer: a request waiting for a frozen or stopped Redis would
 * wait until it is back, and the test brings it back only after the requests it waits on have
 * answered (and, for requests it does not wait on, only after OUTAGE_MS).
 */
const NO_HANG_MS = 3_000;
/**
 * How long Redis stays stopped in the mid-traffic test: the background clients' requests do not
 * hold up the restart, so a client request that waited for Redis would take the outage; it lasts
 * well past NO_HANG_MS for that to show.
 */
const OUTAGE_MS = NO_HANG_MS + 1_500;

describe('Redis slow or down, then back', () => {
  let redis: RedisServerHandle;
  let idp: DevIdp;
  let stateful: SampleUpstream;
  let stateless: SampleUpstream;
  let dir: string;
  let gateway: GatewayProcess;
  let alice: string;
  let aliceOpen: string;
  let aliceStrict: string;
  const todo = () => `${gateway.url}/mcp`;
  const open = () => `${gateway.url}/open`;
  const strict = () => `${gateway.url}/strict`;

  const storeLogs = (state: 'up' | 'down') => storeEvents(gateway.logs, state);
  const readiness = async () => {
    const response = await fetch(`${gateway.url}/readyz`);
    return { status: response.status, body: (await response.json()) as { checks: { store: string } } };
  };

  beforeAll(async () => {
    redis = await startRedisServer();
    idp = await startDevIdp({ scopes: ['todo:read', 'todo:write'] });
    [stateful, stateless] = await Promise.all([
      startSampleUpstream({ responseMode: 'json', stateless: false }),
      startSampleUpstream({ responseMode: 'json', stateless: true }),
    ]);
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-outage-'));
    await writeFile(join(dir, 'todo.yaml'), 'scopes: [todo:read]\ntools:\n  list_todos:\n    scopes: [todo:read]\n    rateLimit: { requests: 1000, per: 1m }\n');
    await writeFile(join(dir, 'open.yaml'), 'scopes: [todo:read]\nrateLimit: { requests: 1000, per: 1m }\ntools:\n  list_todos: [todo:read]\n');
    await writeFile(
      join(dir, 'gateway.yaml'),
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        `publicUrl: ${PUBLIC_URL}`,
        `store: { type: redis, url: "${redis.url}", commandTimeout: ${COMMAND_TIMEOUT_MS}ms, connectTimeout: 500ms }`,
        'issuers:',
        `  - issuer: ${idp.issuer}`,
        'routes:',
        `  - { name: todo, path: /mcp, upstream: "${stateful.url}", policy: todo.yaml }`,
        `  - { name: open, path: /open, upstream: "${stateless.url}", policy: open.yaml, onStoreError: allow }`,
        `  - { name: strict, path: /strict, upstream: "${stateless.url}", policy: open.yaml }`,
      ].join('\n'),
    );
    gateway = await spawnGateway(join(dir, 'gateway.yaml'));
    const token = (resource: string) => obtainAccessToken(idp, { resource, scope: 'todo:read', subject: 'alice' }).then((t) => t.accessToken);
    [alice, aliceOpen, aliceStrict] = await Promise.all([token(`${PUBLIC_URL}/mcp`), token(`${PUBLIC_URL}/open`), token(`${PUBLIC_URL}/strict`)]);
  }, 30_000);

  afterAll(async () => {
    const code = await gateway?.stop();
    await Promise.all([stateful?.close(), stateless?.close(), idp?.close(), redis?.close()]);
    await rm(dir, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  it('slow Redis: a session-bound request gets 503 + Retry-After within the command timeout, never forwarded; the same session works once Redis answers', async () => {
    const sessionId = await openSession(todo(), alice);
    const downBefore = storeLogs('down').length;
    redis.freeze();
    try {
      stateful.clearLog();
      const slow = await timed(mcpRequest(todo(), toolCall(1, 'list_todos'), { token: alice, sessionId }));
      expect(slow.status).toBe(503);
      expect(slow.retryAfter).toBe('1');
      expect(JSON.parse(slow.body)).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
      expect(slow.ms).toBeLessThan(NO_HANG_MS);
      expect(stateful.requests).toHaveLength(0);

      // onStoreError: allow lets the rate-limited route through, unlimited, meanwhile.
      const allowed = await timed(mcpRequest(open(), toolCall(2, 'list_todos'), { token: aliceOpen }));
      expect(allowed.status).toBe(200);
      expect(allowed.ms).toBeLessThan(NO_HANG_MS);
    } finally {
      redis.thaw();
    }
    await waitFor('the session to work again', async () => (await timed(mcpRequest(todo(), toolCall(3, 'list_todos'), { token: alice, sessionId }))).status === 200);
    // The gateway logged it at the first failure, but its stdout reaches us on its own time.
    await waitFor('the store-down log line', async () => storeLogs('down').length > downBefore, 5_000);
    expect(storeLogs('down').length).toBe(downBefore + 1);
  });

  it('Redis stopped mid-traffic: only 200 or 503, nothing hangs, readiness fails, one log line; after a restart the same process recovers', async () => {
    const sessionId = await openSession(todo(), alice);
    const downBefore = storeLogs('down').length;
    const upBefore = storeLogs('up').length;
    const seen: { status: number; ms: number; phase: string }[] = [];
    let phase = 'before';
    let traffic = true;
    const client = async () => {
      for (let id = 100; traffic; id++) {
        const { status, ms } = await timed(mcpRequest(todo(), toolCall(id, 'list_todos'), { token: alice, sessionId }));
        seen.push({ status, ms, phase });
        await sleep(20);
      }
    };
    const clients = [client(), client()];
    await sleep(300);

    phase = 'down';
    await redis.stop();
    const stoppedAt = Date.now();
    await waitFor('readiness to fail', async () => (await readiness()).status === 503, 5_000);
    const notReady = await readiness();
    expect(notReady.status).toBe(503);
    expect(notReady.body.checks.store).toBe('unavailable');
    // A new session could not be bound to its owner, so the upstream never opens one: fail
    // closed before forwarding (nothing orphaned upstream).
    stateful.clearLog();
    // Redis stays down until these are answered: one that waited for Redis would hang.
    const init = await timed(mcpRequest(todo(), initializeRequest(7), { token: alice }));
    expect(init.status).toBe(503);
    expect(init.retryAfter).toBe('1');
    expect(init.ms).toBeLessThan(NO_HANG_MS);
    expect(stateful.requests.filter((r) => r.rpcMethods.includes('initialize'))).toHaveLength(0);
    // Rate limits: onStoreError allow goes on unlimited, deny (the default) fails closed unforwarded.
    stateless.clearLog();
    const unlimited = await timed(mcpRequest(open(), toolCall(8, 'list_todos'), { token: aliceOpen }));
    expect(unlimited.status).toBe(200);
    expect(unlimited.ms).toBeLessThan(NO_HANG_MS);
    expect(stateless.requests).toHaveLength(1);
    const denied = await timed(mcpRequest(strict(), toolCall(9, 'list_todos'), { token: aliceStrict }));
    expect(denied.status).toBe(503);
    expect(denied.ms).toBeLessThan(NO_HANG_MS);
    expect(denied.retryAfter).toBe('1');
    expect(JSON.parse(denied.body)).toMatchObject({ jsonrpc: '2.0', id: 9, error: { code: -32000 } });
    expect(stateless.requests).toHaveLength(1);

    await sleep(stoppedAt + OUTAGE_MS - Date.now());

    phase = 'restarted';
    await redis.start();
    await waitFor('readiness after the restart', async () => (await readiness()).status === 200);
    traffic = false;
    await Promise.all(clients);

    expect(gateway.child.exitCode).toBeNull(); // the same process throughout
    expect(seen.filter((s) => s.phase === 'before').every((s) => s.status === 200)).toBe(true);
    // While Redis is down: 503, or 200 for a request already past its session check as it stopped.
    const whileDown = seen.filter((s) => s.phase === 'down').map((s) => s.status);
    expect(whileDown).toContain(503);
    expect(whileDown.filter((status) => status !== 503 && status !== 200)).toEqual([]);
    // Redis kept nothing across the restart: the binding is gone, and a lost binding is a 404
    // (start a new session), never a request forwarded without its owner check.
    const afterRestart = seen.filter((s) => s.phase === 'restarted').map((s) => s.status);
    expect(afterRestart.filter((status) => status !== 503 && status !== 404)).toEqual([]);
    expect(Math.max(...seen.map((s) => s.ms))).toBeLessThan(NO_HANG_MS);
    await waitFor('the store-down log line', async () => storeLogs('down').length > downBefore, 5_000);
    expect(storeLogs('down').length).toBe(downBefore + 1);
    expect(storeLogs('down').at(-1)!.msg).toMatch(/^store unreachable/);
    // The gateway logged it before /readyz said 200, but its stdout reaches us on its own time.
    await waitFor('the store-up log line', async () => storeLogs('up').length > upBefore);
    expect(storeLogs('up').length).toBe(upBefore + 1);

    const fresh = await openSession(todo(), alice);
    expect((await timed(mcpRequest(todo(), toolCall(9, 'list_todos'), { token: alice, sessionId: fresh }))).status).toBe(200);
  }, 30_000);
});
