import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import type { Gateway } from '../../src/gateway.js';
import { openSession } from '../support/mcp-http.js';
import { startSingleRouteGateway } from '../support/single-route-gateway.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-servers.js';

/**
 * A managed-Redis setup: TLS only (rediss://, our own CA, a client certificate) and an ACL user
 * whose password comes from a mounted secret file. The gateway must connect, verify the server,
 * and refuse to pretend when it cannot.
 */
const USER = { name: 'gateway', password: 's3cret pass:/1' };

describe('Redis over TLS with an ACL user', () => {
  let redis: RedisServerHandle;
  let idp: DevIdp;
  let upstream: SampleUpstream;
  let dir: string;
  const gateways: Gateway[] = [];

  const start = async (storeYaml: string) => {
    const gateway = await startSingleRouteGateway({ dir, issuerYaml: `{ issuer: "${idp.issuer}" }`, upstreamUrl: upstream.url, storeYaml: storeYaml });
    gateways.push(gateway);
    return gateway;
  };
  const tlsFiles = '{ caFile: ca.pem, certFile: client.pem, keyFile: client-key.pem }';
  const ready = async (gateway: Gateway) => (await fetch(`${gateway.url}/readyz`)).json() as Promise<{ status: string; checks: { store: string } }>;

  beforeAll(async () => {
    redis = await startRedisServer({ tls: true, user: USER, extraArgs: ['--tls-auth-clients', 'yes'] });
    idp = await startDevIdp({ scopes: ['todo:read'] });
    upstream = await startSampleUpstream({ responseMode: 'json', stateless: false });
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-tls-'));
    await writeFile(join(dir, 'todo.yaml'), 'scopes: [todo:read]\ntools:\n  list_todos: [todo:read]\n');
    await writeFile(join(dir, 'redis-password'), `${USER.password}\n`);
    await writeFile(join(dir, 'wrong-password'), 'not it\n');
    await copyFile(redis.tls!.caFile, join(dir, 'ca.pem'));
    await copyFile(redis.tls!.clientCertFile, join(dir, 'client.pem'));
    await copyFile(redis.tls!.clientKeyFile, join(dir, 'client-key.pem'));
  }, 30_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await Promise.all([upstream?.close(), idp?.close(), redis?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('connects with rediss://, the CA, a client certificate and the password file, and keeps session bindings there', async () => {
    const gateway = await start(`{ type: redis, url: "rediss://127.0.0.1:${redis.port}", username: ${USER.name}, passwordFile: redis-password, tls: ${tlsFiles}, keyPrefix: "tls-test:" }`);
    expect(await ready(gateway)).toMatchObject({ status: 'ready', checks: { store: 'ok' } });
    const token = (await obtainAccessToken(idp, { resource: `${gateway.url}/mcp`, scope: 'todo:read', subject: 'alice' })).accessToken;
    const sessionId = await openSession(`${gateway.url}/mcp`, token);

    const inspector = new Redis(redis.url, { tls: { ca: [await readText(redis.tls!.caFile)], cert: await readText(redis.tls!.clientCertFile), key: await readText(redis.tls!.clientKeyFile) } });
    try {
      expect(await inspector.exists(`tls-test:session:todo:${sessionId}`)).toBe(1);
    } finally {
      inspector.disconnect();
    }
  });

  it('is not ready with a wrong password', async () => {
    const gateway = await start(`{ type: redis, url: "rediss://127.0.0.1:${redis.port}", username: ${USER.name}, passwordFile: wrong-password, tls: ${tlsFiles}, connectTimeout: 500ms }`);
    expect(await ready(gateway)).toMatchObject({ status: 'not ready', checks: { store: 'unavailable' } });
  });

  it("is not ready when the server's certificate is not signed by a trusted CA (it is always verified)", async () => {
    const gateway = await start(`{ type: redis, url: "rediss://${USER.name}:${encodeURIComponent(USER.password)}@127.0.0.1:${redis.port}", tls: { certFile: client.pem, keyFile: client-key.pem }, connectTimeout: 500ms }`);
    expect(await ready(gateway)).toMatchObject({ status: 'not ready', checks: { store: 'unavailable' } });
  });
});

const readText = (file: string) => readFile(file, 'utf8');
