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
  /**
   * False while the store is known not to answer (Redis: its circuit breaker is open), for
   * metrics; read at scrape time, so it costs nothing per call. A store without it is up.
   */
  readonly available?: boolean;
  get(key: string): Promise<string | undefined>;
  /** Reads the value and, if present, restarts its time to live: a sliding expiry in one step. */
  getAndTouch(key: string, ttlMs: number): Promise<string | undefined>;
  /** Sets the value with a time to live; a later `set` of the same key replaces value and TTL. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(...keys: string[]): Promise<void>;
  /** Sets the value only if the key is absent; true when it was set. Single use, across replicas. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;

  /**
   * Remembers a single-use id (a DPoP proof's jti, RFC 9449 §11.1) for `ttlMs`, per owner, in a
   * space of its own: filling it never takes the room sessions and rate limits need. 'seen' when
   * the owner already recorded the id within its TTL; 'owner-full' when the owner already holds
   * as many live ids as one owner may (nothing is recorded): one principal's flood then refuses
   * only that principal. A live id is never dropped to make room, since its proof could then be
   * replayed: a memory store whose space is full rejects with StoreFullError instead.
   */
  recordOnce(owner: string, id: string, ttlMs: number): Promise<RecordOnceOutcome>;

  /**
   * Whether `entries` new keys holding about `bytes` would fit now, with room kept back for
   * writes already under way: asked before forwarding a request whose answer must be stored
   * (an initialize's binding). A store without caps of its own (Redis) always has room.
   */
  hasRoom(entries: number, bytes: number): boolean;

  /**
   * An ordered set of members (oldest first) under one key. Adding is atomic, so replicas adding
   * at once never lose each other's members; an existing member keeps its place. Returns the size.
   */
  addToIndex(key: string, member: string, ttlMs: number): Promise<number>;
  indexMembers(key: string): Promise<string[]>;
  removeFromIndex(key: string, members: readonly string[]): Promise<void>;

  /** Spends `cost` from a rate limit's budget, atomically across every replica (see gcra.ts). */
  consumeRate(key: string, limit: RateLimitSpec, cost: number): Promise<RateLimitResult>;

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

export type RecordOnceOutcome = 'recorded' | 'seen' | 'owner-full';

export type RateLimitResult =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly retryAfterMs: number };

/** Raised when a memory store is full: the caller fails closed rather than lose someone's entry. */
export class StoreFullError extends Error {
  override readonly name = 'StoreFullError';
}

/** The store could not be reached or did not answer in time. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
