import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { SessionBindings } from '../../src/mcp/sessions.js';
import { MemoryStore } from '../../src/store/memory.js';
import { ReplaySpace } from '../../src/store/replay-space.js';
import { StoreFullError } from '../../src/store/types.js';

/**
 * The memory store's DPoP proof records (issue 23): a space of their own, bounded per principal
 * and in all, that never lets a replay through and never takes room from sessions.
 */
describe('replay space', () => {
  const clock = { now: 0 };
  const space = (maxEntries: number, maxPerOwner: number) => new ReplaySpace({ maxEntries, maxPerOwner }, () => clock.now);
  afterEach(() => {
    clock.now = 0;
  });

  it('records an id once per owner, until its window has passed', () => {
    const replay = space(10, 10);
    expect(replay.record('alice', 'p1', 1_000)).toBe('recorded');
    expect(replay.record('alice', 'p1', 1_000)).toBe('seen');
    expect(replay.record('bob', 'p1', 1_000)).toBe('recorded'); // another owner's id is another id
    clock.now = 999;
    expect(replay.record('alice', 'p1', 1_000)).toBe('seen');
    clock.now = 1_000;
    expect(replay.record('alice', 'p1', 1_000)).toBe('recorded');
    expect(replay.size).toBe(2);
  });

  it("refuses an owner at its quota, and only that owner: the others record as before", () => {
    const replay = space(100, 3);
    for (const id of ['a', 'b', 'c']) expect(replay.record('mallory', id, 1_000)).toBe('recorded');
    expect(replay.record('mallory', 'd', 1_000)).toBe('owner-full');
    expect(replay.record('mallory', 'a', 1_000)).toBe('seen'); // a replay is still a replay
    for (const id of ['a', 'b', 'c']) expect(replay.record('alice', id, 1_000)).toBe('recorded');
    expect(replay.record('alice', 'd', 1_000)).toBe('owner-full'); // her own bound, the same for everyone
    expect(replay.size).toBe(3 + 3);
    clock.now = 1_000;
    expect(replay.record('mallory', 'd', 1_000)).toBe('recorded'); // her window passed: room again
  });

  it('when full in all, refuses (fails closed) rather than drop a live id; room returns as windows pass', () => {
    const replay = space(4, 2);
    replay.record('a', '1', 1_000);
    replay.record('a', '2', 1_000);
    replay.record('b', '1', 2_000);
    replay.record('b', '2', 2_000);
    expect(() => replay.record('c', '1', 1_000)).toThrow(StoreFullError);
    expect(replay.record('a', '1', 1_000)).toBe('seen');
    clock.now = 1_000;
    expect(replay.record('c', '1', 1_000)).toBe('recorded');
    expect(replay.record('b', '1', 1_000)).toBe('seen');
    expect(replay.size).toBe(3);
  });

  it('a full space is swept at most once a second: a flood against it costs no walk per request', () => {
    const replay = space(2, 2);
    replay.record('a', '1', 10);
    replay.record('a', '2', 5_000);
    clock.now = 5;
    expect(() => replay.record('b', '1', 1_000)).toThrow(StoreFullError); // swept at 5: nothing expired yet
    clock.now = 500;
    expect(() => replay.record('b', '1', 1_000)).toThrow(StoreFullError); // '1' expired, but no sweep before 1005
    clock.now = 1_005;
    expect(replay.record('b', '1', 1_000)).toBe('recorded');
  });

  it('property: never lets a replay through, answers seen exactly for live ids, and stays within its bounds', () => {
    const operation = fc.record({
      owner: fc.constantFrom('alice', 'bob', 'mallory'),
      id: fc.constantFrom('p1', 'p2', 'p3', 'p4', 'p5'),
      ttlMs: fc.integer({ min: 1, max: 3_000 }),
      advanceMs: fc.integer({ min: 0, max: 1_500 }),
      sweep: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 4 }), fc.array(operation, { maxLength: 80 }), (maxEntries, maxPerOwner, operations) => {
        let now = 0;
        const replay = new ReplaySpace({ maxEntries, maxPerOwner }, () => now);
        // The model: what must still be refused as a replay (owner → id → until).
        const model = new Map<string, Map<string, number>>();
        for (const { owner, id, ttlMs, advanceMs, sweep } of operations) {
          now += advanceMs;
          if (sweep) replay.sweep();
          const live = [...(model.get(owner) ?? new Map<string, number>())].filter(([, until]) => until > now);
          const isLive = live.some(([seen]) => seen === id);
          let outcome: string;
          try {
            outcome = replay.record(owner, id, ttlMs);
          } catch (error) {
            expect(error).toBeInstanceOf(StoreFullError);
            outcome = 'full';
          }
          if (isLive) expect(outcome).toBe('seen');
          else expect(outcome).not.toBe('seen');
          if (outcome === 'recorded') {
            if (!model.has(owner)) model.set(owner, new Map());
            model.get(owner)!.set(id, now + ttlMs);
            expect(live.length).toBeLessThan(maxPerOwner);
          }
          expect(replay.size).toBeLessThanOrEqual(maxEntries);
        }
      }),
    );
  });
});

describe('memory store: replay records apart from sessions', () => {
  const stores: MemoryStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });

  it('a full replay space leaves sessions their room, and full sessions leave proofs theirs', async () => {
    const store = new MemoryStore({ maxEntries: 3, maxReplayEntries: 4, maxReplayEntriesPerOwner: 2 });
    stores.push(store);
    const sessions = new SessionBindings(store, { idleTimeoutMs: 60_000, maxPerPrincipal: 8 });
    for (const owner of ['m1', 'm2']) for (const id of ['a', 'b']) expect(await store.recordOnce(owner, id, 60_000)).toBe('recorded');
    await expect(store.recordOnce('m3', 'a', 60_000)).rejects.toBeInstanceOf(StoreFullError);
    await sessions.ensureAvailable();
    await sessions.bind('s1', { principal: 'bob', route: 'todo', protocolVersion: '2025-06-18' });
    expect(await sessions.authorize('todo', 's1', 'bob')).toMatchObject({ principal: 'bob' });
    expect(store.usage).toMatchObject({ entries: 2, replayEntries: 4 });
    // The other way round: with the session entries spent, proofs are still recorded.
    const other = new MemoryStore({ maxEntries: 1, maxReplayEntries: 4, maxReplayEntriesPerOwner: 2 });
    stores.push(other);
    await other.set('session:todo:x', '{}', 60_000);
    await expect(other.set('session:todo:y', '{}', 60_000)).rejects.toBeInstanceOf(StoreFullError);
    expect(await other.recordOnce('alice', 'p', 60_000)).toBe('recorded');
  });

  it('the periodic sweep drops proofs whose window has passed', async () => {
    let now = 0;
    const store = new MemoryStore({ maxReplayEntries: 10 }, () => now, 20);
    stores.push(store);
    await store.recordOnce('alice', 'p', 10);
    expect(store.usage.replayEntries).toBe(1);
    now = 10;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(store.usage.replayEntries).toBe(0);
  });
});
