import { gcraStep } from './gcra.js';
import { ReplaySpace } from './replay-space.js';
import { StoreFullError, type KeyValueStore, type RateLimitResult, type RateLimitSpec, type RecordOnceOutcome } from './types.js';

export { StoreFullError } from './types.js';

type Value =
  | { readonly kind: 'string'; value: string }
  | { readonly kind: 'index'; readonly members: Set<string> }
  /** A rate limit's TAT, kept as the number it is (no string made and parsed per request). */
  | { readonly kind: 'rate'; tatMicros: number };

interface Entry {
  data: Value;
  expiresAt: number;
  /** What this entry counts against maxBytes (see sizeOf). */
  bytes: number;
}

export interface MemoryStoreLimits {
  /** Entries: session bindings, their per-principal indexes, rate-limit budgets, introspection answers. */
  readonly maxEntries?: number;
  /** Their keys' and values' length, plus a fixed cost per entry and index member: a few huge values cannot take the heap. */
  readonly maxBytes?: number;
  /** DPoP proof ids, kept apart (see ReplaySpace): filling them never refuses a session. */
  readonly maxReplayEntries?: number;
  /** DPoP proof ids one principal may have live at once. */
  readonly maxReplayEntriesPerOwner?: number;
}

export const MEMORY_STORE_LIMITS: Required<MemoryStoreLimits> = {
  maxEntries: 100_000,
  maxBytes: 64 * 1024 * 1024,
  maxReplayEntries: 100_000,
  // At 126 s per proof (the window with the default 30 s clock tolerance), about 80 DPoP
  // requests a second, sustained, per principal; ten principals to fill the space.
  maxReplayEntriesPerOwner: 10_000,
};

/** What an entry costs besides its key and value (the map slot, the entry object), roughly. */
const ENTRY_OVERHEAD = 64;
const MEMBER_OVERHEAD = 16;
/** A full store is swept at most this often: a flood against a full store costs no sweep per request. */
const FULL_SWEEP_INTERVAL_MS = 1_000;
/** Share of each cap hasRoom() keeps back for binds of initializes already forwarded. */
const HEADROOM = 0.01;

/**
 * Single-instance store (the default; unit tests use it too). Expired entries are dropped when
 * read and swept periodically, so abandoned sessions do not grow memory without bound;
 * `maxEntries` and `maxBytes` cap it regardless. A full store refuses new keys instead of
 * evicting old ones, which may belong to someone else. DPoP proof ids live in a space of their
 * own with its own caps, so a flood of proofs never fills the room sessions need.
 */
export class MemoryStore implements KeyValueStore {
  /** Memory never fails. */
  readonly failedCalls = 0;
  private readonly entries = new Map<string, Entry>();
  private readonly replay: ReplaySpace;
  private readonly sweeper: NodeJS.Timeout;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private bytes = 0;
  private lastFullSweep = Number.NEGATIVE_INFINITY;

  /** `limits` as a number is maxEntries, as before. */
  constructor(
    limits: number | MemoryStoreLimits = {},
    private readonly now: () => number = Date.now,
    sweepIntervalMs = 60_000,
  ) {
    const caps = { ...MEMORY_STORE_LIMITS, ...(typeof limits === 'number' ? { maxEntries: limits } : limits) };
    this.maxEntries = caps.maxEntries;
    this.maxBytes = caps.maxBytes;
    this.replay = new ReplaySpace({ maxEntries: caps.maxReplayEntries, maxPerOwner: caps.maxReplayEntriesPerOwner }, now);
    this.sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweeper.unref();
  }

  /** What the store holds now (expired entries not yet swept included): for tests and metrics. */
  get usage(): { readonly entries: number; readonly bytes: number; readonly replayEntries: number } {
    return { entries: this.entries.size, bytes: this.bytes, replayEntries: this.replay.size };
  }

  async get(key: string): Promise<string | undefined> {
    const entry = this.live(key);
    return entry?.data.kind === 'string' ? entry.data.value : undefined;
  }

  async getAndTouch(key: string, ttlMs: number): Promise<string | undefined> {
    return this.getAndTouchNow(key, ttlMs);
  }

  private getAndTouchNow(key: string, ttlMs: number): string | undefined {
    const now = this.now();
    const entry = this.live(key, now);
    if (entry?.data.kind !== 'string') return undefined;
    entry.expiresAt = now + ttlMs;
    return entry.data.value;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.put(key, { kind: 'string', value }, ttlMs, ENTRY_OVERHEAD + key.length + value.length);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.live(key)) return false;
    await this.set(key, value, ttlMs);
    return true;
  }

  async recordOnce(owner: string, id: string, ttlMs: number): Promise<RecordOnceOutcome> {
    return this.replay.record(owner, id, ttlMs);
  }

  async delete(...keys: string[]): Promise<void> {
    for (const key of keys) {
      const entry = this.entries.get(key);
      if (entry) this.drop(key, entry);
    }
  }

  async addToIndex(key: string, member: string, ttlMs: number): Promise<number> {
    const entry = this.live(key);
    // A Set keeps insertion order, and re-adding leaves a member where it was: as ZADD NX does.
    const existing = entry?.data.kind === 'index' ? entry.data.members : undefined;
    if (existing?.has(member)) {
      entry!.expiresAt = this.now() + ttlMs;
      return existing.size;
    }
    const members = existing ?? new Set<string>();
    const base = existing ? entry!.bytes : ENTRY_OVERHEAD + key.length;
    // Checked (and refused) before the member is added: a full store leaves the index as it was.
    this.put(key, { kind: 'index', members }, ttlMs, base + MEMBER_OVERHEAD + member.length);
    members.add(member);
    return members.size;
  }

  async indexMembers(key: string): Promise<string[]> {
    const entry = this.live(key);
    return entry?.data.kind === 'index' ? [...entry.data.members] : [];
  }

  async removeFromIndex(key: string, members: readonly string[]): Promise<void> {
    const entry = this.live(key);
    if (entry?.data.kind !== 'index') return;
    for (const member of members) {
      if (!entry.data.members.delete(member)) continue;
      entry.bytes -= MEMBER_OVERHEAD + member.length;
      this.bytes -= MEMBER_OVERHEAD + member.length;
    }
    if (entry.data.members.size === 0) this.drop(key, entry);
  }

  async consumeRate(key: string, limit: RateLimitSpec, cost: number): Promise<RateLimitResult> {
    return this.consumeRateNow(key, limit, cost);
  }

  /** consumeRate without the promise (the byte-bounds property test drives it step by step). */
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
      } else this.put(key, { kind: 'rate', tatMicros: step.next.tatMicros }, step.next.ttlMs, ENTRY_OVERHEAD + key.length + 8);
    }
    return step.result;
  }

  hasRoom(entries: number, bytes: number): boolean {
    const fits = () =>
      this.entries.size + entries <= this.maxEntries - Math.ceil(this.maxEntries * HEADROOM) &&
      this.bytes + bytes + entries * ENTRY_OVERHEAD <= this.maxBytes - Math.ceil(this.maxBytes * HEADROOM);
    if (fits()) return true;
    this.sweepIfDue();
    return fits();
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
    this.bytes = 0;
    this.replay.clear();
  }

  private live(key: string, now = this.now()): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= now) {
      this.drop(key, entry);
      return undefined;
    }
    return entry;
  }

  /** Stores `data` as the key's value; `bytes` is what the entry will count (see MemoryStoreLimits). */
  private put(key: string, data: Value, ttlMs: number, bytes: number): void {
    let existing = this.entries.get(key);
    if (!this.fits(existing, bytes)) {
      this.sweepIfDue();
      existing = this.entries.get(key);
    }
    if (!this.fits(existing, bytes)) {
      throw new StoreFullError(`memory store holds ${this.entries.size} entries, ${this.bytes} of ${this.maxBytes} bytes`);
    }
    this.bytes += bytes - (existing?.bytes ?? 0);
    if (existing) {
      existing.data = data;
      existing.expiresAt = this.now() + ttlMs;
      existing.bytes = bytes;
      return;
    }
    this.entries.set(key, { data, expiresAt: this.now() + ttlMs, bytes });
  }

  /** A new key needs a free entry; any write that grows needs the bytes. Shrinking always fits. */
  private fits(existing: Entry | undefined, bytes: number): boolean {
    if (existing === undefined && this.entries.size >= this.maxEntries) return false;
    const growth = bytes - (existing?.bytes ?? 0);
    return growth <= 0 || this.bytes + growth <= this.maxBytes;
  }

  private drop(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }

  private sweepIfDue(): void {
    const now = this.now();
    if (now - this.lastFullSweep < FULL_SWEEP_INTERVAL_MS) return;
    this.lastFullSweep = now;
    this.sweep(now);
  }

  private sweep(now = this.now()): void {
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.drop(key, entry);
    this.replay.sweep(now);
  }
}
