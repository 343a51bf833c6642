import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import type { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/logger.js';
import { RedisStore } from '../../src/store/redis.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { startSingleRouteGateway } from '../support/single-route-gateway.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-servers.js';

/** The least-privilege ACL for the gateway's Redis user, exactly as docs/operations.md documents it. */
const DOCUMENTED_ACL = '~mcp-auth-gateway:* +get +set +getex +del +zadd +zrange +zrem +pexpire +zcard +eval +evalsha +time +ping +info';

describe('a Redis user with only the documented permissions', () => {
  let redis: RedisServerHandle;
  let admin: Redis;
  let idp: DevIdp;
  let upstream: SampleUpstream;
  let dir: string;
  const gateways: Gateway[] = [];

  const start = async (user: string) => {
    const gateway = await startSingleRouteGateway({ dir, issuerYaml: `{ issuer: "${idp.issuer}" }`, upstreamUrl: upstream.url, storeYaml: `{ type: redis, url: "redis://${user}:pw@127.0.0.1:${redis.port}", connectTimeout: 500ms }` });
    gateways.push(gateway);
    return gateway;
  };

  beforeAll(async () => {
    redis = await startRedisServer({ user: { name: 'admin', password: 'admin-pw' } });
    admin = new Redis(redis.url);
    await admin.call('ACL', 'SETUSER', 'gateway', 'on', '>pw', ...DOCUMENTED_ACL.split(' '));
    await admin.call('ACL', 'SETUSER', 'readonly', 'on', '>pw', ...DOCUMENTED_ACL.replace(' +set', '').split(' '));
    idp = await startDevIdp({ scopes: ['todo:read'] });
    upstream = await startSampleUpstream({ responseMode: 'json', stateless: false });
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-acl-'));
    await writeFile(join(dir, 'todo.yaml'), 'scopes: [todo:read]\ntools:\n  list_todos:\n    scopes: [todo:read]\n    rateLimit: { requests: 100, per: 1m }\n');
  }, 30_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    admin?.disconnect();
    await Promise.all([upstream?.close(), idp?.close(), redis?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('is enough for readiness, sessions and rate limits', async () => {
    const gateway = await start('gateway');
    expect((await fetch(`${gateway.url}/readyz`)).status).toBe(200);
    const token = (await obtainAccessToken(idp, { resource: `${gateway.url}/mcp`, scope: 'todo:read', subject: 'alice' })).accessToken;
    const sessionId = await openSession(`${gateway.url}/mcp`, token);
    const call = await mcpRequest(`${gateway.url}/mcp`, toolCall(2, 'list_todos'), { token, sessionId });
    expect(call.status).toBe(200);
    expect(await call.json()).toMatchObject({ id: 2, result: {} });
    const keys = await admin.keys('mcp-auth-gateway:*');
    expect(keys.some((k) => k.startsWith('mcp-auth-gateway:ratelimit:todo:'))).toBe(true);
  });

  it('is enough for DPoP proof records: recorded, a replay seen, an owner stopped at its bound', async () => {
    const store = new RedisStore({ url: `redis://gateway:pw@127.0.0.1:${redis.port}`, keyPrefix: 'mcp-auth-gateway:', commandTimeoutMs: 1_000, connectTimeoutMs: 1_000, maxReplayEntriesPerOwner: 2 }, createLogger('silent'));
    try {
      expect(await store.waitUntilReady(2_000)).toBe(true);
      expect(await store.recordOnce('owner', 'a', 10_000)).toBe('recorded');
      expect(await store.recordOnce('owner', 'a', 10_000)).toBe('seen');
      expect(await store.recordOnce('owner', 'b', 10_000)).toBe('recorded');
      expect(await store.recordOnce('owner', 'c', 10_000)).toBe('owner-full');
      expect(await admin.zcard('mcp-auth-gateway:dpop-proofs:owner')).toBe(2);
      expect(await admin.pttl('mcp-auth-gateway:dpop-proofs:owner')).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  it('without SET, readiness says so (PING alone would pass)', async () => {
    const gateway = await start('readonly');
    const response = await fetch(`${gateway.url}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ checks: { store: 'unavailable' } });
  });
});
