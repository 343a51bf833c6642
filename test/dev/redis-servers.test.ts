/**
 * Exercises test/support/redis-servers.ts against real redis-server processes with ioredis, so that
 * Redis store tests can trust its TLS, ACL, stop/start, freeze/thaw and cluster behaviour.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, Redis, type RedisOptions } from 'ioredis';

import {
  startRedisCluster,
  startRedisServer,
  type RedisClusterHandle,
  type RedisServerHandle,
} from '../support/redis-servers.js';

const clients: Array<Redis | Cluster> = [];
const servers: Array<RedisServerHandle | RedisClusterHandle> = [];

/** A client that is disconnected after the test; connection errors are expected in some tests. */
function track<T extends Redis | Cluster>(client: T): T {
  client.on('error', () => {});
  clients.push(client);
  return client;
}

async function serve<T extends RedisServerHandle | RedisClusterHandle>(started: Promise<T>): Promise<T> {
  const server = await started;
  servers.push(server);
  return server;
}

async function waitFor(check: () => Promise<unknown>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('startRedisServer', () => {
  it('serves SET/GET on an ephemeral loopback port', async () => {
    const server = await serve(startRedisServer());
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    const client = track(new Redis(server.url));
    await client.set('greeting', 'hello');
    expect(await client.get('greeting')).toBe('hello');
  });

  describe('with TLS and an ACL user', () => {
    const user = { name: 'gateway', password: 'p@ss word:/1' };
    let server: RedisServerHandle;
    let tls: RedisOptions['tls'];
    /** Fail fast instead of retrying, so auth errors reach the command. */
    const noRetry: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null };

    beforeAll(async () => {
      server = await serve(startRedisServer({ tls: true, user }));
      tls = { ca: readFileSync(server.tls!.caFile) };
    });

    it('accepts the CA-verified rediss:// URL with the user password', async () => {
      expect(server.url).toBe(`rediss://gateway:${encodeURIComponent(user.password)}@127.0.0.1:${server.port}`);
      const client = track(new Redis(server.url, { tls }));
      await client.set('secure', 'yes');
      expect(await client.get('secure')).toBe('yes');
      expect(await client.call('ACL', 'WHOAMI')).toBe('gateway');
    });

    it('refuses a wrong password and an anonymous client', async () => {
      const wrong = track(new Redis(server.url.replace(encodeURIComponent(user.password), 'nope'), { tls, ...noRetry }));
      await expect(wrong.ping()).rejects.toThrow(/WRONGPASS/);
      const anonymous = track(new Redis(`rediss://127.0.0.1:${server.port}`, { tls, ...noRetry }));
      await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
    });

    it('refuses a client that does not trust the CA', async () => {
      const untrusting = track(new Redis(server.url, { tls: {}, ...noRetry }));
      const errors: Error[] = [];
      untrusting.on('error', (err: Error) => errors.push(err));
      // ioredis rejects connect() with a generic "Connection is closed."; the cause arrives as an event.
      await expect(untrusting.connect()).rejects.toThrow();
      expect(errors.map((e) => e.message).join('\n')).toMatch(/self[- ]signed|unable to verify/i);
    });
  });

  it('issues a client certificate that passes mutual TLS', async () => {
    const server = await serve(startRedisServer({ tls: true, extraArgs: ['--tls-auth-clients', 'yes'] }));
    const files = server.tls!;
    const ca = readFileSync(files.caFile);
    const withCert = track(
      new Redis(server.url, { tls: { ca, cert: readFileSync(files.clientCertFile), key: readFileSync(files.clientKeyFile) } }),
    );
    expect(await withCert.ping()).toBe('PONG');
    const withoutCert = track(new Redis(server.url, { tls: { ca }, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }));
    await expect(withoutCert.ping()).rejects.toThrow();
  });

  it('stop() fails in-flight traffic and start() brings the server back on the same port', async () => {
    const server = await serve(startRedisServer());
    const port = server.port;
    // Without the offline queue, commands fail while disconnected instead of waiting for a reconnect.
    const client = track(new Redis(server.url, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => 50 }));
    await client.connect();
    await client.set('k', 'v');

    await server.stop();
    await expect(client.get('k')).rejects.toThrow();

    await server.start();
    expect(server.port).toBe(port);
    await waitFor(() => client.ping());
    // Nothing is persisted across a restart.
    expect(await client.get('k')).toBeNull();
    await client.set('k', 'again');
    expect(await client.get('k')).toBe('again');
  });

  it('freeze() makes commands time out and thaw() recovers', async () => {
    const server = await serve(startRedisServer());
    const client = track(new Redis(server.url, { commandTimeout: 200 }));
    await client.set('k', 'v');

    server.freeze();
    try {
      await expect(client.get('k')).rejects.toThrow(/timed out/i);
    } finally {
      server.thaw();
    }
    expect(await client.get('k')).toBe('v');
  });
});

describe('startRedisCluster', () => {
  it('serves keys across three masters', async () => {
    const cluster = await serve(startRedisCluster());
    expect(cluster.nodes).toHaveLength(3);
    const client = track(new Cluster([...cluster.nodes]));

    const keys = Array.from({ length: 20 }, (_, i) => `key:${i}`);
    await Promise.all(keys.map((key) => client.set(key, `value-${key}`)));
    expect(await Promise.all(keys.map((key) => client.get(key)))).toEqual(keys.map((key) => `value-${key}`));

    const slots = await client.cluster('SLOTS');
    const masterPorts = new Set(slots.map(([, , master]) => master?.[1]));
    expect([...masterPorts].sort()).toEqual(cluster.nodes.map((n) => n.port).sort());
    expect(slots.reduce((sum, [from, to]) => sum + to - from + 1, 0)).toBe(16_384);
    // The keys are fixed, so this checks deterministically that every master got some of them.
    const sizes = await Promise.all(client.nodes('master').map((node) => node.dbsize()));
    expect(sizes.every((n) => n > 0)).toBe(true);
  });
});
