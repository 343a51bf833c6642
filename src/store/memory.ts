import type { KeyValueStore } from './types.js';

interface Entry {
  value: string;
  expiresAt: number;
}

/** Raised when the store is full: the caller fails closed rather than lose someone's entry. */
export class StoreFullError extends Error {
  override readonly name = 'StoreFullError';
}

/**
 * Single-instance store. Expired entries are dropped when read and swept periodically, so
 * abandoned sessions do not grow memory without bound; `maxEntries` caps it regardless. A full
 * store refuses new keys instead of evicting old ones, which may belong to someone else.
 */
export class MemoryStore implements KeyValueStore {
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
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    const existing = this.entries.get(key);
    if (existing) {
      existing.value = value;
      existing.expiresAt = this.now() + ttlMs;
      return;
    }
    if (this.entries.size >= this.maxEntries) this.sweep();
    if (this.entries.size >= this.maxEntries) throw new StoreFullError(`memory store holds ${this.maxEntries} entries`);
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}
