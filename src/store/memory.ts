import { gcraStep } from './gcra.js';
import type { KeyValueStore, RateLimitResult, RateLimitSpec } from './types.js';

type Value =
  | { readonly kind: 'string'; value: string }
  | { readonly kind: 'index'; readonly members: Set<string> }
  /** A rate limit's TAT, kept as the number it is (no string made and parsed per request). */
  | { readonly kind: 'rate'; tatMicros: number };

interface Entry {
  data: Value;
  expiresAt: number;
}

/** Raised when the store is full: the caller fails closed rather than lose someone's entry. */
export class StoreFullError extends Error {
  override readonly name = 'StoreFullError';
}

/**
 * Single-instance store (the default; unit tests use it too). Expired entries are dropped when
 * read and swept periodically, so abandoned sessions do not grow memory without bound;
 * `maxEntries` caps it regardless. A full store refuses new keys instead of evicting old ones,
 * which may belong to someone else.
 */
export class MemoryStore implements KeyValueStore {
  /** Memory never fails. */
  readonly failedCalls = 0;
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
    sweepIntervalMs = 60_000,
  ) {
    this.sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweeper.unref();
  }

  async get(key: string): Promise<string | undefined> {
    const entry = this.live(key);
    return entry?.data.kind === 'string' ? entry.data.value : undefined;
  }

  async getAndTouch(key: string, ttlMs: number): Promise<string | undefined> {
    return this.getAndTouchNow(key, ttlMs);
  }

  getAndTouchNow(key: string, ttlMs: number): string | undefined {
    const now = this.now();
    const entry = this.live(key, now);
    if (entry?.data.kind !== 'string') return undefined;
    entry.expiresAt = now + ttlMs;
    return entry.data.value;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.put(key, { kind: 'string', value }, ttlMs);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.live(key)) return false;
    this.put(key, { kind: 'string', value }, ttlMs);
    return true;
  }

  async delete(...keys: string[]): Promise<void> {
    for (const key of keys) this.entries.delete(key);
  }

  async addToIndex(key: string, member: string, ttlMs: number): Promise<number> {
    const entry = this.live(key);
    // A Set keeps insertion order, and re-adding leaves a member where it was: as ZADD NX does.
    const members = entry?.data.kind === 'index' ? entry.data.members : new Set<string>();
    members.add(member);
    this.put(key, { kind: 'index', members }, ttlMs);
    return members.size;
  }

  async indexMembers(key: string): Promise<string[]> {
    const entry = this.live(key);
    return entry?.data.kind === 'index' ? [...entry.data.members] : [];
  }

  async removeFromIndex(key: string, members: readonly string[]): Promise<void> {
    const entry = this.live(key);
    if (entry?.data.kind !== 'index') return;
    for (const member of members) entry.data.members.delete(member);
    if (entry.data.members.size === 0) this.entries.delete(key);
  }

  async consumeRate(key: string, limit: RateLimitSpec, cost: number): Promise<RateLimitResult> {
    return this.consumeRateNow(key, limit, cost);
  }

  /** consumeRate without the promise: memory answers at once, so the limiter need not wait. */
  consumeRateNow(key: string, limit: RateLimitSpec, cost: number): RateLimitResult {
    const now = this.now();
    const entry = this.live(key, now);
    const stored = entry?.data.kind === 'rate' ? entry.data : undefined;
    const step = gcraStep(stored?.tatMicros, now * 1000, limit, cost);
    if (step.next) {
      // The budget's own entry is updated in place: one map look-up per request, not two.
      if (entry && stored) {
        stored.tatMicros = step.next.tatMicros;
        entry.expiresAt = now + step.next.ttlMs;
      } else this.put(key, { kind: 'rate', tatMicros: step.next.tatMicros }, step.next.ttlMs);
    }
    return step.result;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }

  private live(key: string, now = this.now()): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private put(key: string, data: Value, ttlMs: number): void {
    const existing = this.entries.get(key);
    if (existing) {
      existing.data = data;
      existing.expiresAt = this.now() + ttlMs;
      return;
    }
    if (this.entries.size >= this.maxEntries) this.sweep();
    if (this.entries.size >= this.maxEntries) throw new StoreFullError(`memory store holds ${this.maxEntries} entries`);
    this.entries.set(key, { data, expiresAt: this.now() + ttlMs });
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}
