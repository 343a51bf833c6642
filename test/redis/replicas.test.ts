import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { deleteKeys, REDIS_URL, uniqueKeyPrefix } from '../support/redis.js';
import { describeReplicas } from '../support/replica-suite.js';

/** Two gateway processes sharing the real Redis at REDIS_URL. */
const prefix = uniqueKeyPrefix('replicas');
const inspector = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });

afterAll(async () => {
  inspector.disconnect();
  await deleteKeys(REDIS_URL, prefix);
});

describeReplicas('two replicas sharing one Redis', {
  storeYaml: () => `{ type: redis, url: ${REDIS_URL}, keyPrefix: "${prefix}" }`,
  storedKeys: () => inspector.keys(`${prefix}*`),
});
