import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

/** The shared Redis the tests use: REDIS_URL, default redis://127.0.0.1:6379 (.ci/run starts it). */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix no other test (or earlier run) uses, so test files can share one Redis. */
export function uniqueKeyPrefix(label: string): string {
  return `mcp-auth-gateway-test:${label}:${randomUUID()}:`;
}

/** Deletes every key under the prefix; tests call it when done, leaving Redis as they found it. */
export async function deleteKeys(url: string, prefix: string): Promise<string[]> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (keys.length > 0) await redis.del(...keys);
    return keys;
  } finally {
    redis.disconnect();
  }
}
