/**
 * The one shape of every in-process cache the gateway keeps: a Map bounded in entries and,
 * optionally, in a weight summed over them (the characters of the tokens or texts behind each
 * entry), so a flood of distinct keys (tokens, principals, stored bindings) cannot grow memory.
 * Depends on nothing else in the gateway, so any layer may use it.
 *
 * - Full, it drops its oldest entries until the new one fits: oldest by insertion, or by use
 *   with `order: 'use'` (a get makes the entry newest: least recently used out first). With
 *   `whenFull: 'clear'` it empties instead (for memos of a few values that rarely fill).
 * - An entry heavier than `maxEntryWeight` is not kept, so one huge key cannot empty the map.
 * - An entry may carry an expiry time; from then on get() forgets it.
 * - get() allocates nothing: it runs on every request.
 */
export interface BoundedMapOptions<K, V> {
  readonly maxEntries: number;
  /** Most weight (see weigh) the entries may have in all; unbounded without. */
  readonly maxWeight?: number;
  /** An entry's weight; called once, on set. */
  readonly weigh?: (key: K, value: V) => number;
  /** A heavier entry is not kept. Defaults to maxWeight. */
  readonly maxEntryWeight?: number;
  /** 'insertion' (default): set makes an entry newest; 'use': so does get. */
  readonly order?: 'insertion' | 'use';
  /** 'evict-oldest' (default): drop oldest entries until the new one fits; 'clear': drop them all. */
  readonly whenFull?: 'evict-oldest' | 'clear';
  /** Clock for expiry times, in the same unit as set()'s expiresAt. */
  readonly now?: () => number;
}

interface Slot<V> {
  readonly value: V;
  readonly weight: number;
  readonly expiresAt: number;
}

export class BoundedMap<K, V> {
  private readonly slots = new Map<K, Slot<V>>();
  private totalWeight = 0;
  /**
   * A Map iterator is live: it yields entries in insertion order, skips deleted ones and reaches
   * ones added later. Kept across evictions, it finds the oldest entry without walking again over
   * the holes every eviction leaves at the front (a fresh keys().next() does: 7 µs at 10,000
   * entries, against 0.1 µs). Everything it has yielded was evicted, so what it yields next is
   * the oldest entry there is.
   */
  private oldest: MapIterator<K> | undefined;
  private readonly maxEntries: number;
  private readonly maxWeight: number;
  private readonly maxEntryWeight: number;
  private readonly weigh: ((key: K, value: V) => number) | undefined;
  private readonly touch: boolean;
  private readonly clearWhenFull: boolean;
  private readonly now: () => number;

  constructor(options: BoundedMapOptions<K, V>) {
    if (!(options.maxEntries >= 1)) throw new RangeError('BoundedMap: maxEntries must be at least 1');
    this.maxEntries = options.maxEntries;
    this.maxWeight = options.maxWeight ?? Infinity;
    this.maxEntryWeight = Math.min(options.maxEntryWeight ?? Infinity, this.maxWeight);
    this.weigh = options.weigh;
    this.touch = options.order === 'use';
    this.clearWhenFull = options.whenFull === 'clear';
    // Read at each call, not captured: a test's fake Date.now applies.
    this.now = options.now ?? (() => Date.now());
  }

  /** The value, unless absent or expired (an expired entry is forgotten here). */
  get(key: K): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    if (slot.expiresAt !== Infinity && slot.expiresAt <= this.now()) {
      this.remove(key, slot);
      return undefined;
    }
    if (this.touch) {
      this.slots.delete(key);
      this.slots.set(key, slot);
    }
    return slot.value;
  }

  /**
   * Stores the value as the newest entry, good until `expiresAt` (see now), making room first.
   * Replaces what the key held even when the new value is not kept: too heavy, or already
   * expired. Returns whether it was kept.
   */
  set(key: K, value: V, expiresAt = Infinity): boolean {
    this.delete(key);
    if (expiresAt !== Infinity && expiresAt <= this.now()) return false;
    const weight = this.weigh === undefined ? 0 : this.weigh(key, value);
    if (weight > this.maxEntryWeight) return false;
    if (this.slots.size >= this.maxEntries || this.totalWeight + weight > this.maxWeight) this.makeRoom(weight);
    this.slots.set(key, { value, weight, expiresAt });
    this.totalWeight += weight;
    return true;
  }

  delete(key: K): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    this.remove(key, slot);
    return true;
  }

  clear(): void {
    this.slots.clear();
    this.totalWeight = 0;
    this.oldest = undefined;
  }

  get size(): number {
    return this.slots.size;
  }

  /** The entries' weights in all (see maxWeight). */
  get weight(): number {
    return this.totalWeight;
  }

  /** The keys, oldest first (expired entries included until a get finds them). */
  keys(): MapIterator<K> {
    return this.slots.keys();
  }

  private makeRoom(weight: number): void {
    if (this.clearWhenFull) {
      this.clear();
      return;
    }
    while (this.slots.size > 0 && (this.slots.size >= this.maxEntries || this.totalWeight + weight > this.maxWeight)) {
      this.delete(this.oldestKey());
    }
  }

  private oldestKey(): K {
    let next = this.oldest?.next();
    if (next === undefined || next.done === true) {
      // First eviction, or after clear(): a finished iterator never yields again.
      this.oldest = this.slots.keys();
      next = this.oldest.next();
    }
    return next.value as K;
  }

  private remove(key: K, slot: Slot<V>): void {
    this.slots.delete(key);
    this.totalWeight -= slot.weight;
  }
}
