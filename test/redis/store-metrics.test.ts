import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevIdp, type DevIdp } from '../../dev/idp.js';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/logger.js';
import { metricValue } from '../support/scrape.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-servers.js';
import { waitFor } from '../support/timing.js';

/**
 * The gauges the store-outage and readiness alerts read (deploy/kubernetes/monitoring), through
 * a real Redis that stops and comes back: `mcp_gateway_store_up` follows the store, and
 * `mcp_gateway_ready` says what /readyz says, on the same scrape.
 */
describe('store and readiness gauges through a Redis outage', () => {
  let redis: RedisServerHandle;
  let idp: DevIdp;
  let dir: string;
  let gateway: Gateway;
  const gauge = async (name: string) => metricValue(gateway.adminUrl!, name);
  const readyz = async () => (await fetch(`${gateway.adminUrl}/readyz`)).status;

  beforeAll(async () => {
    redis = await startRedisServer();
    idp = await startDevIdp({ scopes: ['todo:read'] });
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-store-metrics-'));
    await writeFile(join(dir, 'todo.yaml'), 'scopes: [todo:read]\ntools:\n  list_todos: [todo:read]\n');
    const config = await parseConfig(
      join(dir, 'gateway.yaml'),
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        'admin: { listen: { host: 127.0.0.1, port: 0 } }',
        `store: { type: redis, url: "${redis.url}", commandTimeout: 300ms, connectTimeout: 500ms }`,
        'issuers:',
        `  - issuer: ${idp.issuer}`,
        'routes:',
        '  - { name: todo, path: /mcp, upstream: "http://127.0.0.1:9/mcp", policy: todo.yaml }',
      ].join('\n'),
    );
    gateway = await startGateway(config, { logger: createLogger('silent') });
  }, 30_000);

  afterAll(async () => {
    await gateway?.close();
    await Promise.all([idp?.close(), redis?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('store up and ready; down and not ready while Redis is stopped; both back once it answers', async () => {
    await waitFor('the replica to be ready', async () => (await readyz()) === 200);
    expect(await gauge('mcp_gateway_store_up')).toBe(1);
    expect(await gauge('mcp_gateway_ready')).toBe(1);

    await redis.stop();
    await waitFor('store_up to drop', async () => (await gauge('mcp_gateway_store_up')) === 0, 5_000);
    expect(await gauge('mcp_gateway_ready')).toBe(0);
    expect(await readyz()).toBe(503);
    expect(await gauge('mcp_gateway_store_up')).toBe(0);

    await redis.start();
    await waitFor('store_up to come back', async () => (await gauge('mcp_gateway_store_up')) === 1, 10_000);
    expect(await gauge('mcp_gateway_ready')).toBe(1);
    expect(await readyz()).toBe(200);
  });
});
