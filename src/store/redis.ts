import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import { StoreUnavailableError, type KeyValueStore, type RateLimitResult, type RateLimitSpec } from './types.js';

export interface RedisStoreOptions {
  /** redis:// or rediss:// (TLS) URL of a single server; or `nodes` for a Cluster. */
  readonly url?: string;
  /** Seed nodes of a Redis Cluster; the rest are discovered. */
  readonly nodes?: readonly { readonly host: string; readonly port: number }[];
  readonly keyPrefix: string;
  readonly username?: string;
  readonly password?: string;
  /** TLS settings (CA, client certificate); a rediss:// URL alone turns TLS on with system CAs. */
  readonly tls?: ConnectionOptions;
  /** Longest wait for any one command: no request ever hangs on the store. */
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/**
 * GCRA (see gcra.ts: whole microseconds, exact in Lua's doubles) in one atomic round trip. The
 * clock is Redis's own TIME, so replicas with skewed clocks still share one budget. Returns 0
 * when allowed, else milliseconds to wait (at least 1).
 */
const CONSUME_RATE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1]) * 1000
local interval = math.floor(period / tonumber(ARGV[2]))
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * tonumber(ARGV[3])
local allow_at = new_tat - period
if allow_at > now then return math.ceil((allow_at - now) / 1000) end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return 0`;

/** ZADD NX scored by Redis's clock (oldest first across replicas), refresh the TTL, return the size. */
const ADD_TO_INDEX = `
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'NX', tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])`;

interface ScriptCommands {
  consumeRate(key: string, periodMs: number, requests: number, cost: number): Promise<number>;
  addToIndex(key: string, member: string, ttlMs: number): Promise<number>;
}

type Client = (Redis | Cluster) & ScriptCommands;

/**
 * The store shared by replicas, through ioredis (a single server, TLS, ACL users, or a Cluster).
 * It never queues: with the offline queue off, a command while disconnected fails at once, and
 * every command has a timeout, so a request waits at most `commandTimeoutMs` on Redis. The
 * client reconnects on its own, forever, with backoff; the outage and the recovery are each
 * logged once. Every operation touches one key, so all of them work on a Cluster.
 */
export class RedisStore implements KeyValueStore {
  private readonly client: Client;
  /** 'starting' until the first answer or failure, so the very first failure is logged too. */
  private state: 'starting' | 'up' | 'down' = 'starting';
  private closing = false;

  constructor(options: RedisStoreOptions, private readonly logger: Logger) {
    const reconnectDelay = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2_000);
    const connection: RedisOptions = {
      keyPrefix: options.keyPrefix,
      username: options.username,
      password: options.password,
      connectTimeout: options.connectTimeoutMs,
      commandTimeout: options.commandTimeoutMs,
      maxRetriesPerRequest: 1,
      ...(options.tls ? { tls: options.tls } : {}),
    };
    if (options.nodes) {
      const clusterOptions: ClusterOptions = {
        keyPrefix: options.keyPrefix,
        enableOfflineQueue: false,
        clusterRetryStrategy: reconnectDelay,
        slotsRefreshTimeout: options.commandTimeoutMs,
        redisOptions: connection,
      };
      this.client = new Cluster(options.nodes.map((node) => ({ ...node })), clusterOptions) as Client;
    } else {
      this.client = new Redis(options.url!, { ...connection, enableOfflineQueue: false, retryStrategy: reconnectDelay }) as Client;
    }
    this.client.defineCommand('consumeRate', { numberOfKeys: 1, lua: CONSUME_RATE });
    this.client.defineCommand('addToIndex', { numberOfKeys: 1, lua: ADD_TO_INDEX });
    this.client.on('ready', () => this.markUp());
    this.client.on('error', (error: Error) => this.markDown(error));
    this.client.on('close', () => this.markDown(new Error('connection closed')));
  }

  /** Resolves once connected, or after `timeoutMs`: startup waits briefly, never forever. */
  async waitUntilReady(timeoutMs: number): Promise<boolean> {
    if (this.client.status === 'ready') return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (ready: boolean) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        resolve(ready);
      };
      const onReady = () => done(true);
      this.client.on('ready', onReady);
    });
  }

  get(key: string): Promise<string | undefined> {
    return this.run(async () => (await this.client.get(key)) ?? undefined);
  }

  getAndTouch(key: string, ttlMs: number): Promise<string | undefined> {
    return this.run(async () => (await this.client.getex(key, 'PX', ttlMs)) ?? undefined);
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    return this.run(async () => void (await this.client.set(key, value, 'PX', ttlMs)));
  }

  delete(...keys: string[]): Promise<void> {
    // One DEL per key: keys in different Cluster slots cannot share a command.
    return this.run(async () => void (await Promise.all(keys.map((key) => this.client.del(key)))));
  }

  addToIndex(key: string, member: string, ttlMs: number): Promise<number> {
    return this.run(() => this.client.addToIndex(key, member, ttlMs));
  }

  indexMembers(key: string): Promise<string[]> {
    return this.run(() => this.client.zrange(key, 0, -1));
  }

  removeFromIndex(key: string, members: readonly string[]): Promise<void> {
    if (members.length === 0) return Promise.resolve();
    return this.run(async () => void (await this.client.zrem(key, ...members)));
  }

  consumeRate(key: string, limit: RateLimitSpec, cost: number): Promise<RateLimitResult> {
    return this.run(async () => {
      const waitMs = Number(await this.client.consumeRate(key, limit.periodMs, limit.requests, cost));
      return waitMs > 0 ? { allowed: false, retryAfterMs: waitMs } : { allowed: true };
    });
  }

  ping(): Promise<void> {
    return this.run(async () => void (await this.client.ping()));
  }

  async close(): Promise<void> {
    this.closing = true;
    // QUIT lets in-flight commands finish; without a connection there is nothing to wait for.
    if (this.client.status !== 'ready') return this.client.disconnect();
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      const result = await command();
      if (this.state !== 'up') this.markUp();
      return result;
    } catch (error) {
      this.markDown(error as Error);
      throw new StoreUnavailableError(`store unavailable: ${(error as Error).message}`, { cause: error });
    }
  }

  private markUp(): void {
    if (this.state === 'up' || this.closing) return;
    this.state = 'up';
    this.logger.info({ event: 'store', store: 'redis', state: 'up' }, 'store reachable: Redis answers');
  }

  /** Logged once per outage, not once per failed request or reconnection attempt. */
  private markDown(error: Error): void {
    if (this.state === 'down' || this.closing) return;
    this.state = 'down';
    this.logger.error(
      { event: 'store', store: 'redis', state: 'down', err: error.message },
      'store unreachable: session-bound requests get 503 and rate limits follow onStoreError until Redis answers again; reconnecting',
    );
  }
}
