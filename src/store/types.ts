/**
 * The little the gateway remembers (session bindings now; rate limits and caches later), behind
 * one small interface so a single instance keeps it in memory and replicas share it in Redis.
 * Values are strings: the caller owns serialisation.
 */
export interface KeyValueStore {
  get(key: string): Promise<string | undefined>;
  /** Sets the value with a time to live; a later `set` of the same key replaces value and TTL. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}
