import { Cluster } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeReplicas } from '../support/replica-suite.js';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-servers.js';

/**
 * The same two-replica checks against a three-master Redis Cluster the test starts from the
 * redis-server binary: every key the gateway writes must work wherever its slot lives.
 */
let cluster: RedisClusterHandle;
let inspector: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  inspector = new Cluster(cluster.nodes.map((node) => ({ ...node })));
}, 30_000);

afterAll(async () => {
  inspector?.disconnect();
  await cluster?.close();
});

/** KEYS on every master: a cluster's keys are spread over its nodes. */
async function keysOnEveryMaster(): Promise<string[]> {
  const perNode = await Promise.all(inspector.nodes('master').map((node) => node.keys('cluster-test:*')));
  return perNode.flat();
}

describeReplicas('two replicas sharing a Redis Cluster', {
  storeYaml: () => `{ type: redis, nodes: [${cluster.nodes.map((n) => `"${n.host}:${n.port}"`).join(', ')}], keyPrefix: "cluster-test:" }`,
  storedKeys: keysOnEveryMaster,
});

it("spread the replicas' keys over more than one master (so the Cluster, not one node, held them)", async () => {
  const perNode = await Promise.all(inspector.nodes('master').map((node) => node.keys('cluster-test:*')));
  expect(perNode.filter((keys) => keys.length > 0).length).toBeGreaterThan(1);
});
