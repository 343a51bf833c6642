import type { RedisStoreOptions } from '../config/types.js';
import { Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import { ADD_TO_INDEX, CONSUME_RATE, RECORD_ONCE } from './redis-scripts.js';
import { StoreHealth } from './store-health.js';
import { StoreUnavailableError, type KeyValueStore, type RateLimitResult, type RateLimitSpec, type RecordOnceOutcome } from './types.js';

export type { RedisStoreOptions };

/** As the memory store's default: about 80 DPoP requests a second, sustained, per principal. */
export const REPLAY_IDS_PER_OWNER = 10_000;
const RECORD_ONCE_OUTCOMES: readonly RecordOnceOutcome[] = ['recorded', 'seen', 'owner-full'];

interface ScriptCommands {
  consumeRate(key: string, periodMs: number, requests: number, cost: number): Promise<number>;
  addToIndex(key: string, member: string, ttlMs: number): Promise<number>;
  recordOnce(key: string, id: string, ttlMs: number, maxPerOwner: number): Promise<number>;
}

type Client = (Redis | Cluster) & ScriptCommands;

/** Key the health probe writes: a write, because a read-only replica or an ACL without SET still answers PING. */
const PROBE_KEY = 'health';

/**
 * The store shared by replicas, through ioredis (a single server, TLS, ACL users, or a Cluster).
 *
 * No request hangs on Redis and no failed request comes back to haunt: every call races one
 * deadline (`commandTimeoutMs`, whatever ioredis retries or redirects underneath); the offline
 * queue is off, so a call while disconnected fails at once; commands that failed are never
 * resent after a reconnect (a timed-out rate-limit spend replayed later would eat the budget of
 * requests that never happened); a connection that goes silent is destroyed after
 * `socketTimeout` and re-established, rather than waiting for the kernel. The client reconnects
 * on its own, forever, with backoff. StoreHealth fails calls fast during an outage and logs it.
 */
export class RedisStore implements KeyValueStore {
  private readonly client: Client;
  private readonly health: StoreHealth;
  private readonly commandTimeoutMs: number;
  private readonly maxReplayEntriesPerOwner: number;
  private closing = false;
  failedCalls = 0;

  constructor(options: RedisStoreOptions, logger: Logger) {
    this.commandTimeoutMs = options.commandTimeoutMs;
    this.maxReplayEntriesPerOwner = options.maxReplayEntriesPerOwner ?? REPLAY_IDS_PER_OWNER;
    const reconnectDelay = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 2_000);
    const connection: RedisOptions = {
      keyPrefix: options.keyPrefix,
      username: options.username,
      password: options.password,
      connectTimeout: options.connectTimeoutMs,
      commandTimeout: options.commandTimeoutMs,
      socketTimeout: Math.max(2 * options.commandTimeoutMs, 1_000),
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      ...(options.tls ? { tls: options.tls } : {}),
    };
    if (options.nodes) {
      const clusterOptions: ClusterOptions = {
        keyPrefix: options.keyPrefix,
        enableOfflineQueue: false,
        clusterRetryStrategy: reconnectDelay,
        slotsRefreshTimeout: options.commandTimeoutMs,
        maxRedirections: 4,
        redisOptions: connection,
      };
      this.client = new Cluster(options.nodes.map((node) => ({ ...node })), clusterOptions) as Client;
    } else {
      this.client = new Redis(options.url!, { ...connection, enableOfflineQueue: false, retryStrategy: reconnectDelay }) as Client;
    }
    this.client.defineCommand('consumeRate', { numberOfKeys: 1, lua: CONSUME_RATE });
    this.client.defineCommand('addToIndex', { numberOfKeys: 1, lua: ADD_TO_INDEX });
    this.client.defineCommand('recordOnce', { numberOfKeys: 1, lua: RECORD_ONCE });
    this.health = new StoreHealth('Redis', () => this.probe(), logger);
    this.client.on('ready', () => this.health.probeSoon());
    this.client.on('error', (error: Error) => this.closing || this.health.down(error));
    this.client.on('close', () => this.closing || this.health.down(new Error('connection closed')));
  }

  get available(): boolean {
    return !this.health.isDown;
  }

  /** Resolves once Redis answers, or false after `timeoutMs`: startup waits briefly, never forever. */
  waitUntilReady(timeoutMs: number): Promise<boolean> {
    return this.health.whenUp(timeoutMs);
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

  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.run(async () => (await this.client.set(key, value, 'PX', ttlMs, 'NX')) === 'OK');
  }

  /** One sorted set per owner, `dpop-proofs:<owner>`, with its own TTL: nothing shared with sessions. */
  recordOnce(owner: string, id: string, ttlMs: number): Promise<RecordOnceOutcome> {
    return this.run(async () => RECORD_ONCE_OUTCOMES[Number(await this.client.recordOnce(`dpop-proofs:${owner}`, id, ttlMs, this.maxReplayEntriesPerOwner))] ?? 'seen');
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

  /** Redis holds what it is given up to its own memory policy: the gateway keeps no caps of its own here. */
  hasRoom(): boolean {
    return true;
  }

  /** Readiness: a real probe (not the breaker's last verdict), which also closes the breaker. */
  async ping(): Promise<void> {
    try {
      await this.probe();
    } catch (error) {
      this.health.down(error as Error);
      throw new StoreUnavailableError(`store unavailable: ${(error as Error).message}`, { cause: error });
    }
    this.health.up();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.health.stop();
    // QUIT lets in-flight commands finish; without a connection there is nothing to wait for.
    if (this.client.status !== 'ready') return this.client.disconnect();
    try {
      await withDeadline(this.client.quit(), this.commandTimeoutMs);
    } catch {
      this.client.disconnect();
    }
  }

  /**
   * Redis can take writes: a SET under the prefix (PING passes on a read-only replica after a
   * failover, or for a user whose ACL forbids writes). On a Cluster, also every master that
   * holds slots answers and reports cluster_state:ok: PING and the SET pass while one master
   * is down, and the client drops a dead master from its pool, so its own node list is not
   * enough; the masters come from the cluster's slot map.
   */
  private async probe(): Promise<void> {
    await withDeadline(this.client.set(PROBE_KEY, '1', 'PX', 10_000), this.commandTimeoutMs);
    if (this.client instanceof Cluster) await withDeadline(this.probeClusterMasters(this.client), this.commandTimeoutMs);
  }

  private async probeClusterMasters(cluster: Cluster): Promise<void> {
    const slots = await cluster.cluster('SLOTS');
    const masters = new Set(slots.flatMap(([, , master]) => (master ? [`${master[0]}:${master[1]}`] : [])));
    const connected = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
    const states = await Promise.all(
      [...masters].map((address) => {
        const node = connected.get(address);
        if (!node) throw new Error(`no connection to cluster master ${address}`);
        return node.cluster('INFO') as Promise<string>;
      }),
    );
    if (masters.size === 0 || states.some((info) => !info.includes('cluster_state:ok'))) throw new Error('cluster state is not ok');
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    if (this.health.isDown) {
      this.failedCalls += 1;
      throw new StoreUnavailableError('store unavailable: waiting for Redis to answer again');
    }
    try {
      return await withDeadline(command(), this.commandTimeoutMs);
    } catch (caught) {
      this.failedCalls += 1;
      const error = caught as Error;
      // A server that answers "wrong type" is up; a foreign key under our prefix is not an outage.
      if (!(error instanceof ReplyError && error.message.startsWith('WRONGTYPE'))) this.health.down(error);
      throw new StoreUnavailableError(`store unavailable: ${error.message}`, { cause: error });
    }
  }
}

/** Rejects after `ms` if the promise has not settled: one deadline per call, whatever happens below. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
