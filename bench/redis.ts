import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

/** The benchmark's own connection to the Redis the replicas share: checks, CPU readings, cleanup. */
export class BenchRedis {
  /** A prefix no other run (or test) uses; everything under it is deleted at the end. */
  readonly keyPrefix = `mcp-auth-gateway-bench:${randomUUID()}:`;
  private readonly client: Redis;
  private lastError: Error | undefined;

  private constructor(url: string) {
    this.client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000 });
    // Errors surface through the failing command; without a listener ioredis would print them.
    // The first one is kept: connect() itself only says "Connection is closed".
    this.client.on('error', (error: Error) => void (this.lastError ??= error));
  }

  /** Connects and PINGs, so a missing Redis fails the run before anything else starts. */
  static async connect(url: string): Promise<BenchRedis> {
    const redis = new BenchRedis(url);
    try {
      await redis.client.connect();
      await redis.client.ping();
    } catch (error) {
      redis.client.disconnect();
      const cause = redis.lastError ?? (error as Error);
      throw new Error(`Redis at REDIS_URL is not answering (${cause.message}); the two-replica scenario needs it`);
    }
    return redis;
  }

  /** CPU seconds the Redis server has used so far (user + system, all its threads). */
  async cpuSeconds(): Promise<number> {
    const info = await this.client.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
    return field('used_cpu_user') + field('used_cpu_sys');
  }

  /** Deletes every key under this run's prefix; returns how many there were. */
  async deleteKeys(): Promise<number> {
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', `${this.keyPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await this.client.del(...keys);
    } while (cursor !== '0');
    return deleted;
  }

  close(): void {
    this.client.disconnect();
  }
}
