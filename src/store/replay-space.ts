import { StoreFullError, type RecordOnceOutcome } from './types.js';

export interface ReplayLimits {
  /** Live ids in all. */
  readonly maxEntries: number;
  /** Live ids one owner may hold: filling the space then takes maxEntries / maxPerOwner owners. */
  readonly maxPerOwner: number;
}

/** A full space is swept at most this often: a flood against a full space costs no sweep per request. */
const FULL_SWEEP_INTERVAL_MS = 1_000;

/**
 * The memory store's single-use ids (DPoP proof jtis), apart from its other entries so that a
 * flood of proofs can never refuse a session. Bounded per owner and in all; owners and ids are
 * fixed-length digests (the caller's), so the counts bound the bytes too. A live id is never
 * evicted to make room (its proof could be replayed): past a bound the space refuses instead,
 * and only ids whose window has passed are dropped.
 */
export class ReplaySpace {
  /** Per owner, id → expiry (ms), in insertion order: nearly expiry order, as windows are alike. */
  private readonly owners = new Map<string, Map<string, number>>();
  private live = 0;
  private lastFullSweep = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly limits: ReplayLimits,
    private readonly now: () => number,
  ) {}

  get size(): number {
    return this.live;
  }

  record(owner: string, id: string, ttlMs: number): RecordOnceOutcome {
    const now = this.now();
    let ids = this.owners.get(owner);
    if (ids !== undefined) {
      const until = ids.get(id);
      if (until !== undefined && until > now) return 'seen';
      if (ids.size >= this.limits.maxPerOwner) this.dropExpiredFront(owner, ids, now);
      if (until !== undefined && ids.delete(id)) this.live -= 1;
      if (ids.size >= this.limits.maxPerOwner) return 'owner-full';
    }
    if (this.live >= this.limits.maxEntries) this.sweepIfDue(now);
    if (this.live >= this.limits.maxEntries) throw new StoreFullError(`replay space holds ${this.limits.maxEntries} ids`);
    if (ids === undefined || ids.size === 0) this.owners.set(owner, (ids ??= new Map()));
    ids.set(id, now + ttlMs);
    this.live += 1;
    return 'recorded';
  }

  /** Drops every id whose window has passed (the store's periodic sweep, and a full space). */
  sweep(now = this.now()): void {
    for (const [owner, ids] of this.owners) {
      for (const [id, until] of ids) {
        if (until <= now) {
          ids.delete(id);
          this.live -= 1;
        }
      }
      if (ids.size === 0) this.owners.delete(owner);
    }
  }

  clear(): void {
    this.owners.clear();
    this.live = 0;
  }

  private sweepIfDue(now: number): void {
    if (now - this.lastFullSweep < FULL_SWEEP_INTERVAL_MS) return;
    this.lastFullSweep = now;
    this.sweep(now);
  }

  /**
   * The owner's oldest ids, up to the first still live: a flooding owner at its bound costs a few
   * steps per request, not a walk through all its ids. One with a shorter window behind a live one
   * waits for the periodic sweep, which only ever refuses more, never lets a replay through.
   */
  private dropExpiredFront(owner: string, ids: Map<string, number>, now: number): void {
    for (const [id, until] of ids) {
      if (until > now) break;
      ids.delete(id);
      this.live -= 1;
    }
    if (ids.size === 0) this.owners.delete(owner);
  }
}
