import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { obtainAccessToken, startDevIdp } from '../dev/idp.js';
import type { Child } from './children.js';
import { firstJsonLine, spawnNode } from './children.js';
import type { Cleanup } from './cleanup.js';
import { ownCpu, processCpu, type CpuSource } from './cpu.js';
import { RESOURCE, startGatewayProcess, type RunningGateway } from './gateway-process.js';
import { assertToolCallWorks, mcpHeaders, openSession, type Endpoint } from './mcp.js';
import type { BenchRedis } from './redis.js';

export type ScenarioId = 'a' | 'b' | 'c' | 'd';

/** One row of the report: where the load goes, and which processes' CPU it spends. */
export interface Scenario {
  readonly id: ScenarioId;
  readonly label: string;
  /** Two for the two-replica row: the load is split evenly between them. */
  readonly endpoints: readonly Endpoint[];
  readonly cpu: readonly CpuSource[];
  /** Gateway processes, to report warnings they logged. */
  readonly gateways: readonly Child[];
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/**
 * Starts the IdP (here: it is idle while load runs), then the upstream, the bare proxy and three
 * gateway processes (one on the memory store, two sharing Redis), opens one MCP session per
 * scenario and checks the measured call really works through every endpoint. Everything started
 * is registered with `cleanup` as soon as it exists.
 */
export async function startStack(cleanup: Cleanup, redis: BenchRedis, redisUrl: string): Promise<Scenario[]> {
  // A day-long token: long runs must not cross its expiry (401s would look like a slow gateway).
  const idp = await startDevIdp({ scopes: ['todo:read'], accessTokenTtlSeconds: 24 * 60 * 60 });
  cleanup.defer('development IdP', () => idp.close());
  const { accessToken } = await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', subject: 'bench' });

  const upstream = spawnNode('upstream', here('./upstream-process.js'), []);
  cleanup.defer('upstream process', () => upstream.stop());
  const upstreamUrl = String((await firstJsonLine(upstream)).url);

  const proxy = spawnNode('bare proxy', here('./proxy-process.js'), [upstreamUrl]);
  cleanup.defer('bare proxy process', () => proxy.stop());
  const proxyUrl = String((await firstJsonLine(proxy)).url);

  const dir = await mkdtemp(join(tmpdir(), 'mcp-auth-gateway-bench-'));
  cleanup.defer('temp dir', () => rm(dir, { recursive: true, force: true }));
  // Registered before the replicas start, so keys they write are deleted even if startup fails.
  cleanup.defer('Redis keys', async () => void (await redis.deleteKeys()));

  const common = { issuer: idp.issuer, upstreamUrl };
  const redisStore = { type: 'redis', url: redisUrl, keyPrefix: redis.keyPrefix } as const;
  const started = await Promise.allSettled([
    startGatewayProcess(dir, { name: 'gateway-memory', store: { type: 'memory' }, ...common }),
    startGatewayProcess(dir, { name: 'gateway-redis-1', store: redisStore, ...common }),
    startGatewayProcess(dir, { name: 'gateway-redis-2', store: redisStore, ...common }),
  ]);
  // Every gateway that did start is stopped, even when another one failed.
  for (const result of started) if (result.status === 'fulfilled') cleanup.defer(result.value.child.name, () => result.value.child.stop());
  const [memory, replica1, replica2] = started.map((result) => {
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  }) as [RunningGateway, RunningGateway, RunningGateway];

  const pid = (child: Child) => child.process.pid!;
  const upstreamCpu = processCpu('upstream', pid(upstream));
  const loadCpu = ownCpu();

  // One session per scenario, shared by all its connections. Row (d) opens it through replica 1
  // only: the binding lives in Redis, so replica 2 accepts it too, and every request on either
  // replica pays the store lookup.
  const direct = { url: upstreamUrl, headers: mcpHeaders(undefined, await openSession(upstreamUrl, undefined)) };
  const proxied = { url: proxyUrl, headers: mcpHeaders(undefined, await openSession(proxyUrl, undefined)) };
  const onMemory = { url: memory.url, headers: mcpHeaders(accessToken, await openSession(memory.url, accessToken)) };
  const sharedSession = await openSession(replica1.url, accessToken);
  const onRedis = [replica1, replica2].map((replica) => ({ url: replica.url, headers: mcpHeaders(accessToken, sharedSession) }));

  const scenarios: Scenario[] = [
    { id: 'a', label: 'direct to upstream', endpoints: [direct], cpu: [upstreamCpu, loadCpu], gateways: [] },
    {
      id: 'b',
      label: 'bare http-proxy-3 hop',
      endpoints: [proxied],
      cpu: [processCpu('proxy', pid(proxy)), upstreamCpu, loadCpu],
      gateways: [],
    },
    {
      id: 'c',
      label: '1 gateway, memory store',
      endpoints: [onMemory],
      cpu: [processCpu('gateway', pid(memory.child)), upstreamCpu, loadCpu],
      gateways: [memory.child],
    },
    {
      id: 'd',
      label: '2 gateways, shared Redis',
      endpoints: onRedis,
      cpu: [
        processCpu('gateway', pid(replica1.child)),
        processCpu('gateway', pid(replica2.child)),
        upstreamCpu,
        { role: 'redis', read: () => redis.cpuSeconds() },
        loadCpu,
      ],
      gateways: [replica1.child, replica2.child],
    },
  ];
  for (const scenario of scenarios) for (const endpoint of scenario.endpoints) await assertToolCallWorks(endpoint);
  return scenarios;
}
