import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken, registerPublicClient, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { spawnGateway, type GatewayProcess } from './gateway-process.js';
import { mcpRequest, openSession, toolCall } from './mcp-http.js';

/** Replicas behind one Service share this public origin: tokens are bound to it, not to a replica. */
export const PUBLIC_URL = 'http://localhost:8443';
const RESOURCE = `${PUBLIC_URL}/mcp`;

export const REPLICA_POLICY = `
scopes: [todo:read]
tools:
  list_todos: [todo:read]
  add_todo:
    scopes: [todo:write]
    rateLimit: { requests: 4, per: 1m, by: subject }
  delete_todo:
    scopes: [todo:write]
    rateLimit: { requests: 2, per: 1m, by: client }
`;

export interface ReplicaSuiteOptions {
  /** The `store:` section both replicas use, e.g. `{ type: redis, url: …, keyPrefix: … }`. */
  readonly storeYaml: () => string;
  /** Every key the replicas wrote, to show the state lives in the store rather than a replica. */
  readonly storedKeys: () => Promise<string[]>;
}

/**
 * Two gateway processes sharing one store, in front of one real SDK upstream, with tokens from
 * a real IdP: a client's consecutive requests may land on either replica, and must behave as if
 * there were one gateway.
 */
export function describeReplicas(title: string, options: ReplicaSuiteOptions): void {
  describe(title, () => {
    let idp: DevIdp;
    let upstream: SampleUpstream;
    let dir: string;
    let a: GatewayProcess;
    let b: GatewayProcess;
    let alice: string;
    let bob: string;
    const mcp = (replica: GatewayProcess) => `${replica.url}/mcp`;

    beforeAll(async () => {
      idp = await startDevIdp({ scopes: ['todo:read', 'todo:write'] });
      upstream = await startSampleUpstream({ responseMode: 'json', stateless: false });
      dir = await mkdtemp(join(tmpdir(), 'mcp-gw-replicas-'));
      await writeFile(join(dir, 'todo.yaml'), REPLICA_POLICY);
      const config = join(dir, 'gateway.yaml');
      await writeFile(
        config,
        [
          'listen: { host: 127.0.0.1, port: 0 }',
          `publicUrl: ${PUBLIC_URL}`,
          `store: ${options.storeYaml()}`,
          'issuers:',
          `  - issuer: ${idp.issuer}`,
          'routes:',
          '  - { name: todo, path: /mcp, upstream: ' + upstream.url + ', policy: todo.yaml }',
        ].join('\n'),
      );
      [a, b] = await Promise.all([spawnGateway(config), spawnGateway(config)]);
      const scope = 'todo:read todo:write';
      [alice, bob] = await Promise.all([
        obtainAccessToken(idp, { resource: RESOURCE, scope, subject: 'alice' }).then((t) => t.accessToken),
        obtainAccessToken(idp, { resource: RESOURCE, scope, subject: 'bob' }).then((t) => t.accessToken),
      ]);
    }, 30_000);

    afterAll(async () => {
      // A replica exits 0 on SIGTERM; anything else is a crash worth failing on.
      const codes = await Promise.all([a?.stop(), b?.stop()]);
      await upstream?.close();
      await idp?.close();
      await rm(dir, { recursive: true, force: true });
      expect(codes).toEqual([0, 0]);
    });

    it('both replicas report ready: issuer keys fetched and the store answering', async () => {
      for (const replica of [a, b]) {
        const response = await fetch(`${replica.url}/readyz`);
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({ status: 'ready', checks: { store: 'ok', issuers: { [idp.issuer]: 'ok' } } });
      }
    });

    it("a session opened on replica A is its owner's on replica B, refused there for anyone else, and ended by DELETE on B", async () => {
      const sessionId = await openSession(mcp(a), alice);
      expect((await options.storedKeys()).some((key) => key.endsWith(`session:todo:${sessionId}`))).toBe(true);

      const listed = await mcpRequest(mcp(b), { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { token: alice, sessionId });
      expect(listed.status).toBe(200);
      expect(((await listed.json()) as { result: { tools: { name: string }[] } }).result.tools.map((t) => t.name)).toContain('list_todos');

      upstream.clearLog();
      for (const replica of [a, b]) {
        const hijack = await mcpRequest(mcp(replica), toolCall(3, 'list_todos'), { token: bob, sessionId });
        expect(hijack.status).toBe(404);
        await hijack.text();
      }
      expect(upstream.requests).toHaveLength(0);

      const ended = await mcpRequest(mcp(b), undefined, { token: alice, sessionId, method: 'DELETE' });
      expect(ended.status).toBeLessThan(300);
      await ended.text();
      expect((await options.storedKeys()).some((key) => key.endsWith(`session:todo:${sessionId}`))).toBe(false);
      const after = await mcpRequest(mcp(a), toolCall(4, 'list_todos'), { token: alice, sessionId });
      expect(after.status).toBe(404);
      await after.text();
    });

    it('a per-subject rate limit is counted across both replicas, and the refused call never reaches the upstream', async () => {
      const sessionA = await openSession(mcp(a), alice);
      upstream.clearLog();
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const replica = i % 2 === 0 ? a : b;
        const response = await mcpRequest(mcp(replica), toolCall(10 + i, 'add_todo', { title: `t${i}` }), { token: alice, sessionId: sessionA });
        statuses.push(response.status);
        await response.text();
      }
      expect(statuses).toEqual([200, 200, 200, 200]);

      const refused = await mcpRequest(mcp(a), toolCall(20, 'add_todo', { title: 'one too many' }), { token: alice, sessionId: sessionA });
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await refused.json()).toMatchObject({ jsonrpc: '2.0', id: 20, error: { code: -32000, message: expect.stringContaining('Rate limit exceeded') } });
      expect(upstream.requests.flatMap((r) => r.toolNames)).toEqual(['add_todo', 'add_todo', 'add_todo', 'add_todo']);

      // Bob's budget is his own.
      const sessionBob = await openSession(mcp(b), bob);
      const bobCall = await mcpRequest(mcp(b), toolCall(21, 'add_todo', { title: 'bob' }), { token: bob, sessionId: sessionBob });
      expect(bobCall.status).toBe(200);
      await bobCall.text();
    });

    it('a per-client rate limit is shared by every user of that client (an agent identity), across replicas', async () => {
      const { clientId } = await registerPublicClient(idp, { scope: 'todo:read todo:write' });
      const tokenFor = async (subject: string) =>
        (await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read todo:write', subject, clientId })).accessToken;
      const [carol, dave] = await Promise.all([tokenFor('carol'), tokenFor('dave')]);
      const [carolSession, daveSession] = await Promise.all([openSession(mcp(a), carol), openSession(mcp(b), dave)]);
      const call = async (replica: GatewayProcess, token: string, sessionId: string, id: number) => {
        const response = await mcpRequest(mcp(replica), toolCall(id, 'delete_todo', { id: 999 }), { token, sessionId });
        await response.text();
        return response.status;
      };
      expect(await call(a, carol, carolSession, 30)).toBe(200);
      expect(await call(b, dave, daveSession, 31)).toBe(200);
      expect(await call(b, carol, carolSession, 32)).toBe(429);
      expect(await call(a, dave, daveSession, 33)).toBe(429);
    });
  });
}
