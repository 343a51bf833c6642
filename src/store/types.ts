/**
 * The little the gateway remembers (session bindings, rate-limit state; token caches later),
 * behind one small interface so a single instance keeps it in memory and replicas share it in
 * Redis. Values are strings: the caller owns serialisation. Every operation is one round trip.
 *
 * Any failure to reach the store rejects with StoreUnavailableError; callers decide whether
 * that fails closed (sessions always do) or open (rate limits, when a route says so).
 */
export interface KeyValueStore {
  /** Calls that failed (or were refused at once while the store is down), for metrics. */
  readonly failedCalls: number;
  get(key: string): Promise<string | undefined>;
  /** Reads the value and, if present, restarts its time to live: a sliding expiry in one step. */
  getAndTouch(key: string, ttlMs: number): Promise<string | undefined>;
  /**
   * The same, answered at once, by a store that needs no round trip (memory): every request on
   * a session reads its binding, and then spends no promise or await on it. Redis leaves it out.
   */
  getAndTouchNow?(key: string, ttlMs: number): string | undefined;
  /** Sets the value with a time to live; a later `set` of the same key replaces value and TTL. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(...keys: string[]): Promise<void>;
  /** Sets the value only if the key is absent; true when it was set. Single use, across replicas. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;

  /**
   * An ordered set of members (oldest first) under one key. Adding is atomic, so replicas adding
   * at once never lose each other's members; an existing member keeps its place. Returns the size.
   */
  addToIndex(key: string, member: string, ttlMs: number): Promise<number>;
  indexMembers(key: string): Promise<string[]>;
  removeFromIndex(key: string, members: readonly string[]): Promise<void>;

  /** Spends `cost` from a rate limit's budget, atomically across every replica (see gcra.ts). */
  consumeRate(key: string, limit: RateLimitSpec, cost: number): Promise<RateLimitResult>;
  /**
   * The same, answered at once, by a store that needs no round trip (memory): the limiter then
   * spends no promise or await per request. Stores that must wait (Redis) leave it out.
   */
  consumeRateNow?(key: string, limit: RateLimitSpec, cost: number): RateLimitResult;

  /** Resolves when the store answers; used by readiness. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface RateLimitSpec {
  /** How many requests the budget holds: also the largest burst. */
  readonly requests: number;
  /** The period over which `requests` are refilled. */
  readonly periodMs: number;
}

export type RateLimitResult =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number };

/** The store could not be reached or did not answer in time. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
