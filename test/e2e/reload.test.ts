import { mkdir, mkdtemp, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { spawnGateway, type GatewayProcess } from '../support/gateway-process.js';
import { mcpRequest, toolCall } from '../support/mcp-http.js';
import { sleep, waitFor } from '../support/timing.js';

/**
 * Hot reload in a real gateway process: file changes (plain writes and Kubernetes' atomic
 * `..data` symlink swap) and SIGHUP apply a new policy without a restart; a file with problems
 * is refused, logged with file:line:col and shown in readiness, and the last good policy stays.
 * Under steady traffic, no request fails and each is decided by the policy in force at its start.
 */
const PUBLIC_URL = 'http://localhost:8443';
const ALLOW = 'scopes: [todo:read]\ntools:\n  list_todos: [todo:read]\n';
const DENY = 'scopes: [todo:read]\ntools:\n  list_todos: deny\n';
const BROKEN = 'scopes: [todo:read]\ntools:\n  list_todos: alow\n';

describe('hot reload', () => {
  let idp: DevIdp;
  let upstream: SampleUpstream;
  let root: string;
  let token: string;

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: ['todo:read'] });
    upstream = await startSampleUpstream({ responseMode: 'json', stateless: true });
    root = await mkdtemp(join(tmpdir(), 'mcp-gw-reload-'));
    token = (await obtainAccessToken(idp, { resource: `${PUBLIC_URL}/mcp`, scope: 'todo:read', subject: 'alice' })).accessToken;
  }, 30_000);
  afterAll(async () => {
    await Promise.all([upstream?.close(), idp?.close()]);
    await rm(root, { recursive: true, force: true });
  });

  const configText = () =>
    [`publicUrl: ${PUBLIC_URL}`, 'listen: { host: 127.0.0.1, port: 0 }', 'admin: { listen: { host: 127.0.0.1, port: 0 } }', 'issuers:', `  - issuer: ${idp.issuer}`, 'routes:', `  - { name: todo, path: /mcp, upstream: "${upstream.url}", policy: todo.yaml }`].join('\n');

  /** 'allowed' or 'denied' by the policy in force (a denied tool answers -32602 Unknown tool). */
  const outcome = async (gateway: GatewayProcess, id = 1): Promise<'allowed' | 'denied' | string> => {
    const response = await mcpRequest(`${gateway.url}/mcp`, toolCall(id, 'list_todos'), { token });
    const body = (await response.json()) as { result?: unknown; error?: { code: number } };
    if (response.status === 200 && body.result) return 'allowed';
    if (response.status === 200 && body.error?.code === -32602) return 'denied';
    return `unexpected ${response.status} ${JSON.stringify(body)}`;
  };
  /** A metric's value on the gateway's admin listener (the sample with exactly these labels). */
  const metric = async (gateway: GatewayProcess, sample: string): Promise<number | undefined> => {
    const adminUrl = gateway.logs.find((e) => e.msg === 'gateway listening')!.adminUrl as string;
    const line = (await (await fetch(`${adminUrl}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${sample} `));
    return line === undefined ? undefined : Number(line.slice(sample.length + 1));
  };
  const reloads = (gateway: GatewayProcess) => gateway.logs.filter((e) => e.event === 'reload' && e.msg === 'config reloaded');
  const refusals = (gateway: GatewayProcess) => gateway.logs.filter((e) => e.event === 'reload' && e.msg !== 'config reloaded');

  it('applies an edited policy, refuses a broken one with file:line:col, and answers SIGHUP', async () => {
    const dir = join(root, 'plain');
    await mkdir(dir);
    await writeFile(join(dir, 'gateway.yaml'), configText());
    await writeFile(join(dir, 'todo.yaml'), DENY);
    const gateway = await spawnGateway(join(dir, 'gateway.yaml'));
    try {
      expect(await outcome(gateway)).toBe('denied');
      await writeFile(join(dir, 'todo.yaml'), ALLOW);
      await waitFor('the edited policy', async () => (await outcome(gateway)) === 'allowed', 5_000);

      await writeFile(join(dir, 'todo.yaml'), BROKEN);
      await waitFor('the refusal', async () => refusals(gateway).length > 0, 5_000);
      const refusal = refusals(gateway).at(-1)!;
      expect(refusal.msg).toBe('config reload refused: the last good configuration stays in force');
      expect(refusal.problems).toEqual([`${join(dir, 'todo.yaml')}:3:15: tools.list_todos must be a list of scopes, deny, or {scopes | anyOf, when, arguments, rateLimit}`]);
      expect(await outcome(gateway)).toBe('allowed');
      // The refusal is a metric too: a counter and a gauge an alert can fire on.
      expect(await metric(gateway, 'mcp_gateway_config_reloads_total{result="refused"}')).toBe(1);
      expect(await metric(gateway, 'mcp_gateway_config_reloads_total{result="applied"}')).toBe(1);
      expect(await metric(gateway, 'mcp_gateway_config_last_reload_refused')).toBe(1);
      const ready = await fetch(`${gateway.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { checks: { config: { status: string; problems: string[] } } }).checks.config).toMatchObject({
        status: 'last reload refused',
        problems: [expect.stringContaining('todo.yaml:3:15')],
      });

      const before = refusals(gateway).length;
      gateway.child.kill('SIGHUP');
      await waitFor('the SIGHUP attempt', async () => refusals(gateway).length > before, 5_000);
      expect(refusals(gateway).at(-1)!.reason).toBe('SIGHUP');
      expect(gateway.child.exitCode).toBeNull();

      await writeFile(join(dir, 'todo.yaml'), DENY);
      await waitFor('the fixed policy', async () => (await outcome(gateway)) === 'denied', 5_000);
      expect(((await (await fetch(`${gateway.url}/readyz`)).json()) as { checks: { config: unknown } }).checks.config).toBe('ok');
      expect(await metric(gateway, 'mcp_gateway_config_last_reload_refused')).toBe(0);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  }, 30_000);

  it("follows a Kubernetes ConfigMap update: the atomic swap of the ..data symlink", async () => {
    const mount = join(root, 'configmap');
    await mkdir(join(mount, '..v1'), { recursive: true });
    await writeFile(join(mount, '..v1', 'gateway.yaml'), configText());
    await writeFile(join(mount, '..v1', 'todo.yaml'), DENY);
    await symlink('..v1', join(mount, '..data'));
    await symlink(join('..data', 'gateway.yaml'), join(mount, 'gateway.yaml'));
    await symlink(join('..data', 'todo.yaml'), join(mount, 'todo.yaml'));
    const gateway = await spawnGateway(join(mount, 'gateway.yaml'));
    try {
      expect(await outcome(gateway)).toBe('denied');
      // What the kubelet does: write a new timestamped dir, then rename a new symlink over ..data.
      await mkdir(join(mount, '..v2'));
      await writeFile(join(mount, '..v2', 'gateway.yaml'), configText());
      await writeFile(join(mount, '..v2', 'todo.yaml'), ALLOW);
      await symlink('..v2', join(mount, '..data_tmp'));
      await rename(join(mount, '..data_tmp'), join(mount, '..data'));
      await waitFor('the swapped policy', async () => (await outcome(gateway)) === 'allowed', 5_000);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  }, 30_000);

  it('follows a policy that is a symlink into another directory: in-place edits of its target, and the link re-pointed', async () => {
    // A policy kept in a git checkout elsewhere and linked into the config directory: editors and
    // `git pull` change the target, never the link, so the link's own directory never hears of it.
    const dir = join(root, 'linked');
    const checkout = join(root, 'checkout', 'policies');
    const other = join(root, 'other-checkout');
    await Promise.all([mkdir(dir), mkdir(checkout, { recursive: true }), mkdir(other)]);
    await writeFile(join(dir, 'gateway.yaml'), configText());
    await writeFile(join(checkout, 'todo.yaml'), DENY);
    await writeFile(join(checkout, 'unrelated.yaml'), 'not: a policy\n');
    await writeFile(join(other, 'todo.yaml'), DENY);
    await symlink(join(checkout, 'todo.yaml'), join(dir, 'todo.yaml'));
    const gateway = await spawnGateway(join(dir, 'gateway.yaml'));
    try {
      expect(await outcome(gateway)).toBe('denied');

      // Control: another file changing beside the target is no reload and no refusal.
      await writeFile(join(checkout, 'unrelated.yaml'), 'still: not a policy\n');
      await sleep(600);
      expect(reloads(gateway)).toHaveLength(0);
      expect(refusals(gateway)).toHaveLength(0);
      expect(await outcome(gateway)).toBe('denied');

      // The target edited in place (same inode: no rename in the link's directory to see).
      const inode = (await stat(join(checkout, 'todo.yaml'))).ino;
      await writeFile(join(checkout, 'todo.yaml'), ALLOW);
      expect((await stat(join(checkout, 'todo.yaml'))).ino).toBe(inode);
      await waitFor('the edited target', async () => (await outcome(gateway)) === 'allowed', 5_000);
      expect(reloads(gateway)).toHaveLength(1);

      // The link re-pointed atomically to a file in a third directory, which is then edited in
      // place: the new target's directory is watched from the reload on.
      await symlink(join(other, 'todo.yaml'), join(dir, 'todo.yaml.tmp'));
      await rename(join(dir, 'todo.yaml.tmp'), join(dir, 'todo.yaml'));
      await waitFor('the re-pointed link', async () => (await outcome(gateway)) === 'denied', 5_000);
      await writeFile(join(other, 'todo.yaml'), ALLOW);
      await waitFor('the edited new target', async () => (await outcome(gateway)) === 'allowed', 5_000);
      // The old target no longer decides anything: editing it changes nothing.
      const applied = reloads(gateway).length;
      await writeFile(join(checkout, 'todo.yaml'), DENY);
      await sleep(600);
      expect(reloads(gateway)).toHaveLength(applied);
      expect(await outcome(gateway)).toBe('allowed');
      expect(refusals(gateway)).toHaveLength(0);
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  }, 30_000);

  it('under steady traffic through many valid and broken reloads: no request fails, each is decided by the policy in force at its start', async () => {
    const dir = join(root, 'load');
    await mkdir(dir);
    await writeFile(join(dir, 'gateway.yaml'), configText());
    await writeFile(join(dir, 'todo.yaml'), DENY);
    const gateway = await spawnGateway(join(dir, 'gateway.yaml'));
    try {
      const seen: { start: number; end: number; result: string }[] = [];
      let traffic = true;
      const client = async (offset: number) => {
        for (let id = offset; traffic; id += 2) {
          const start = Date.now();
          const result = await outcome(gateway, id).catch((error: Error) => `failed ${error.message}`);
          seen.push({ start, end: Date.now(), result });
        }
      };
      const clients = [client(1), client(2)];
      // Valid versions alternate; a broken one between each pair must change nothing.
      const versions: ('allowed' | 'denied')[] = ['denied'];
      // Each write is logged (refused or applied) before the next is made, so a slow watcher
      // cannot fold two writes into one reload; traffic then runs on each version a while.
      for (let round = 0; round < 8; round++) {
        await sleep(150);
        await writeFile(join(dir, 'todo.yaml'), BROKEN);
        await vi.waitFor(() => expect(refusals(gateway).length, `refusal ${round + 1}`).toBeGreaterThanOrEqual(round + 1), { timeout: 5_000, interval: 25 });
        await sleep(150);
        const next = round % 2 === 0 ? 'allowed' : 'denied';
        await writeFile(join(dir, 'todo.yaml'), next === 'allowed' ? ALLOW : DENY);
        await vi.waitFor(() => expect(reloads(gateway).length, `reload ${round + 1}`).toBeGreaterThanOrEqual(round + 1), { timeout: 5_000, interval: 25 });
        versions.push(next);
      }
      await sleep(300);
      traffic = false;
      await Promise.all(clients);

      expect(seen.filter((s) => s.result !== 'allowed' && s.result !== 'denied')).toEqual([]);
      expect(reloads(gateway)).toHaveLength(8);
      expect(refusals(gateway)).toHaveLength(8);
      // The k-th reload applied the k-th valid version; a request decided between reloads k and
      // k+1 (started after k was logged, done before k+1) saw version k.
      const appliedAt = [0, ...reloads(gateway).map((e) => e.time as number)];
      let checked = 0;
      for (const request of seen) {
        const k = appliedAt.findLastIndex((time) => time < request.start);
        const nextReload = appliedAt[k + 1] ?? Infinity;
        if (request.end >= nextReload) continue; // straddles a reload: either version is right
        expect(request.result, `request started ${request.start}, after reload ${k}`).toBe(versions[k]);
        checked++;
      }
      expect(checked).toBeGreaterThan(50);
      expect(gateway.child.exitCode).toBeNull();
    } finally {
      expect(await gateway.stop()).toBe(0);
    }
  }, 40_000);
});
