import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { MemoryStore } from '../../src/store/memory.js';
import { RedisStore } from '../../src/store/redis.js';
import type { KeyValueStore } from '../../src/store/types.js';
import { deleteKeys, REDIS_URL, uniqueKeyPrefix } from '../support/redis.js';

/**
 * Both stores keep the same promises: the in-memory one for a single instance, Redis (a real
 * server at REDIS_URL) for replicas. One suite, run against each.
 */
const prefix = uniqueKeyPrefix('contract');
/** Single-use ids one owner may hold at once, small so the bound is reached. */
const REPLAY_PER_OWNER = 5;
const opened: KeyValueStore[] = [];
const stores: [string, () => KeyValueStore][] = [
  ['memory', () => new MemoryStore({ maxReplayEntriesPerOwner: REPLAY_PER_OWNER })],
  ['redis', () => new RedisStore({ url: REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 1_000, connectTimeoutMs: 2_000, maxReplayEntriesPerOwner: REPLAY_PER_OWNER }, createLogger('silent'))],
];

afterAll(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
  await deleteKeys(REDIS_URL, prefix);
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(stores)('%s store', (kind, make) => {
  const store = make();
  opened.push(store);
  const key = (name: string) => `${kind}:${name}`;

  it('answers ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it('sets, gets, replaces and deletes values', async () => {
    expect(await store.get(key('a'))).toBeUndefined();
    await store.set(key('a'), 'one', 10_000);
    expect(await store.get(key('a'))).toBe('one');
    await store.set(key('a'), 'two', 10_000);
    expect(await store.get(key('a'))).toBe('two');
    await store.set(key('b'), 'three', 10_000);
    await store.delete(key('a'), key('b'));
    expect(await store.get(key('a'))).toBeUndefined();
    expect(await store.get(key('b'))).toBeUndefined();
  });

  it('setIfAbsent sets once: only the first of many concurrent attempts wins', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.setIfAbsent(key('once'), String(i), 10_000)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await store.setIfAbsent(key('once'), 'again', 10_000)).toBe(false);
  });

  it('expires values after their TTL, and getAndTouch slides it', async () => {
    // Margins of 600 ms and more either side, so a stalled worker cannot flip an outcome: the
    // touch lands at >= 400 ms of a 1 s TTL, and the checks at >= 1.2 s (past the untouched 1 s)
    // and >= 800 ms into the touched 2 s.
    await store.set(key('short'), 'x', 1_000);
    await store.set(key('slid'), 'y', 1_000);
    await sleep(400);
    expect(await store.getAndTouch(key('slid'), 2_000)).toBe('y');
    await sleep(800);
    expect(await store.get(key('short'))).toBeUndefined();
    expect(await store.get(key('slid'))).toBe('y');
    expect(await store.getAndTouch(key('missing'), 2_000)).toBeUndefined();
  });

  it('keeps an index oldest first, re-adding keeps the place, removal is by member', async () => {
    const index = key('index');
    expect(await store.addToIndex(index, 'first', 10_000)).toBe(1);
    expect(await store.addToIndex(index, 'second', 10_000)).toBe(2);
    expect(await store.addToIndex(index, 'first', 10_000)).toBe(2);
    expect(await store.addToIndex(index, 'third', 10_000)).toBe(3);
    expect(await store.indexMembers(index)).toEqual(['first', 'second', 'third']);
    await store.removeFromIndex(index, ['first', 'third', 'never-added']);
    expect(await store.indexMembers(index)).toEqual(['second']);
    expect(await store.indexMembers(key('no-index'))).toEqual([]);
  });

  it('loses no index member when many are added at once', async () => {
    const index = key('concurrent-index');
    const members = Array.from({ length: 50 }, (_, i) => `m${i}`);
    await Promise.all(members.map((m) => store.addToIndex(index, m, 10_000)));
    expect((await store.indexMembers(index)).sort()).toEqual([...members].sort());
  });

  it('spends a rate budget: a burst of `requests`, then a wait, then a refill', async () => {
    // One request's worth refills every second: the burst and the refusal need only land within a
    // second of each other, and so does the pair after the refill.
    const limit = { requests: 3, periodMs: 3_000 };
    const budget = key('rate');
    for (let i = 0; i < 3; i++) expect(await store.consumeRate(budget, limit, 1)).toEqual({ allowed: true });
    const refused = await store.consumeRate(budget, limit, 1);
    expect(refused.allowed).toBe(false);
    if (refused.allowed) return;
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1_000);
    await sleep(refused.retryAfterMs + 20);
    expect(await store.consumeRate(budget, limit, 1)).toEqual({ allowed: true });
    expect((await store.consumeRate(budget, limit, 1)).allowed).toBe(false);
  });

  it('charges a cost of several at once, and refuses a cost the budget cannot hold now', async () => {
    const limit = { requests: 5, periodMs: 10_000 };
    const budget = key('rate-cost');
    expect(await store.consumeRate(budget, limit, 4)).toEqual({ allowed: true });
    expect((await store.consumeRate(budget, limit, 2)).allowed).toBe(false);
    expect(await store.consumeRate(budget, limit, 1)).toEqual({ allowed: true });
  });

  it('counts concurrent spending exactly: 20 at once against a budget of 10 lets exactly 10 through', async () => {
    const limit = { requests: 10, periodMs: 60_000 };
    const budget = key('rate-concurrent');
    const results = await Promise.all(Array.from({ length: 20 }, () => store.consumeRate(budget, limit, 1)));
    expect(results.filter((r) => r.allowed)).toHaveLength(10);
  });

  it('lets a whole burst through when the period does not divide evenly (7 per 10 seconds: all 7)', async () => {
    // 10 s / 7 is as uneven as 1 s / 7 (float arithmetic refused the 7th of either), and the 8th is
    // refused unless the 8 calls spread over more than one refill (1.4 s) rather than 140 ms.
    const limit = { requests: 7, periodMs: 10_000 };
    const budget = key('rate-uneven');
    const results = await Promise.all(Array.from({ length: 8 }, () => store.consumeRate(budget, limit, 1)));
    expect(results.filter((r) => r.allowed)).toHaveLength(7);
  });

  it('records a single-use id once per owner: one of many concurrent attempts wins, another owner is apart', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => store.recordOnce(key('owner-a'), 'proof', 10_000)));
    expect(results.filter((r) => r === 'recorded')).toHaveLength(1);
    expect(results.filter((r) => r === 'seen')).toHaveLength(19);
    expect(await store.recordOnce(key('owner-b'), 'proof', 10_000)).toBe('recorded');
  });

  it("stops an owner at its bound without recording, and only that owner; a replay is still a replay", async () => {
    const owner = key('flooder');
    for (let i = 0; i < REPLAY_PER_OWNER; i++) expect(await store.recordOnce(owner, `p${i}`, 10_000)).toBe('recorded');
    expect(await store.recordOnce(owner, 'one-more', 10_000)).toBe('owner-full');
    expect(await store.recordOnce(owner, 'one-more', 10_000)).toBe('owner-full'); // not recorded by the refusal
    expect(await store.recordOnce(owner, 'p0', 10_000)).toBe('seen');
    expect(await store.recordOnce(key('bystander'), 'p0', 10_000)).toBe('recorded');
  });

  it('forgets an id when its window passes, never before, even when a shorter window comes after a longer one', async () => {
    const owner = key('windows');
    expect(await store.recordOnce(owner, 'long', 2_000)).toBe('recorded');
    expect(await store.recordOnce(owner, 'short', 100)).toBe('recorded');
    await sleep(300);
    expect(await store.recordOnce(owner, 'short', 100)).toBe('recorded'); // its window passed
    expect(await store.recordOnce(owner, 'long', 2_000)).toBe('seen'); // the shorter one did not end it early
    await sleep(1_900);
    expect(await store.recordOnce(owner, 'long', 2_000)).toBe('recorded');
  });

  it('frees an owner bound as its ids expire', async () => {
    const owner = key('refilled');
    // A 1 s window: the six calls before the refusal need only land within a second of the first.
    for (let i = 0; i < REPLAY_PER_OWNER; i++) await store.recordOnce(owner, `p${i}`, 1_000);
    expect(await store.recordOnce(owner, 'next', 1_000)).toBe('owner-full');
    await sleep(1_200);
    expect(await store.recordOnce(owner, 'next', 1_000)).toBe('recorded');
  });
});
