import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { VerifiedTokenCache } from '../../src/auth/token-cache.js';
import { SessionBindings } from '../../src/mcp/sessions.js';
import { MemoryStore, StoreFullError } from '../../src/store/memory.js';
import { rejectionOf } from '../support/refusals.js';

/**
 * Issue 23: every structure a principal can grow is bounded in bytes as well as in count, and
 * nothing a client chose (an initialize's protocolVersion) is kept past its request.
 */
const stores: MemoryStore[] = [];
const memoryStore = (...args: ConstructorParameters<typeof MemoryStore>) => {
  const store = new MemoryStore(...args);
  stores.push(store);
  return store;
};
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
});

const MB = 1_000_000;

describe('memory store: bytes as well as entries', () => {
  it('refuses a write that would pass maxBytes, though entries remain; deleting gives the bytes back', async () => {
    const store = memoryStore({ maxEntries: 100, maxBytes: 10_000 });
    await store.set('small', 'x', 60_000);
    await expect(store.set('huge', 'v'.repeat(MB), 60_000)).rejects.toBeInstanceOf(StoreFullError);
    await expect(store.set('small', 'v'.repeat(MB), 60_000)).rejects.toBeInstanceOf(StoreFullError); // growing in place too
    expect(await store.get('small')).toBe('x');
    await store.set('half', 'v'.repeat(5_000), 60_000);
    await expect(store.set('other-half', 'v'.repeat(5_000), 60_000)).rejects.toBeInstanceOf(StoreFullError);
    await store.delete('half');
    await store.set('other-half', 'v'.repeat(5_000), 60_000);
    expect(store.usage.entries).toBe(2);
  });

  it("counts an index's members: a full store leaves the index as it was", async () => {
    const store = memoryStore({ maxEntries: 100, maxBytes: 2_000 });
    expect(await store.addToIndex('sessions-of:todo:alice', 'a'.repeat(500), 60_000)).toBe(1);
    expect(await store.addToIndex('sessions-of:todo:alice', 'b'.repeat(500), 60_000)).toBe(2);
    await expect(store.addToIndex('sessions-of:todo:alice', 'c'.repeat(1_000), 60_000)).rejects.toBeInstanceOf(StoreFullError);
    expect(await store.indexMembers('sessions-of:todo:alice')).toHaveLength(2);
    await store.removeFromIndex('sessions-of:todo:alice', ['a'.repeat(500)]);
    expect(await store.addToIndex('sessions-of:todo:alice', 'c'.repeat(400), 60_000)).toBe(2);
  });

  it('hasRoom keeps a share of each cap back for binds of initializes already forwarded', async () => {
    const store = memoryStore({ maxEntries: 100 });
    for (let i = 0; i < 97; i++) await store.set(`k${i}`, 'v', 60_000);
    expect(store.hasRoom(2, 100)).toBe(true);
    await store.set('k97', 'v', 60_000);
    expect(store.hasRoom(2, 100)).toBe(false);
    // A bind that was admitted before the store filled still fits, up to the hard cap.
    await store.set('k98', 'v', 60_000);
    await store.set('k99', 'v', 60_000);
    await expect(store.set('k100', 'v', 60_000)).rejects.toBeInstanceOf(StoreFullError);
    const bytes = memoryStore({ maxEntries: 100, maxBytes: 100_000 });
    expect(bytes.hasRoom(2, 90_000)).toBe(true);
    expect(bytes.hasRoom(2, 99_000)).toBe(false);
  });

  it('property: bytes never pass the cap, and every path that removes an entry gives its bytes back', async () => {
    const key = fc.constantFrom('a', 'b', 'c', 'idx1', 'idx2', 'rate');
    const operation = fc.oneof(
      fc.record({ op: fc.constant('set' as const), key, value: fc.string({ maxLength: 300 }), ttlMs: fc.integer({ min: 1, max: 500 }) }),
      fc.record({ op: fc.constant('add' as const), key, member: fc.string({ maxLength: 100 }), ttlMs: fc.integer({ min: 1, max: 500 }) }),
      fc.record({ op: fc.constant('remove' as const), key, member: fc.string({ maxLength: 100 }) }),
      fc.record({ op: fc.constant('delete' as const), key }),
      fc.record({ op: fc.constant('rate' as const), key }),
      fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 400 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 100, max: 2_000 }), fc.array(operation, { maxLength: 60 }), async (maxBytes, operations) => {
        let now = 0;
        const store = new MemoryStore({ maxEntries: 4, maxBytes }, () => now);
        try {
          for (const step of operations) {
            try {
              if (step.op === 'set') await store.set(step.key, step.value, step.ttlMs);
              else if (step.op === 'add') await store.addToIndex(step.key, step.member, step.ttlMs);
              else if (step.op === 'remove') await store.removeFromIndex(step.key, [step.member]);
              else if (step.op === 'delete') await store.delete(step.key);
              else if (step.op === 'rate') store.consumeRateNow(step.key, { requests: 5, periodMs: 1_000 }, 1);
              else now += step.ms;
            } catch (error) {
              expect(error).toBeInstanceOf(StoreFullError);
            }
            expect(store.usage.bytes).toBeLessThanOrEqual(maxBytes);
            expect(store.usage.entries).toBeLessThanOrEqual(4);
          }
          // Some expire (read), the rest are deleted: nothing may be left counted.
          now += 1_000_000;
          for (const name of ['a', 'b']) await store.get(name);
          await store.delete('c', 'idx1', 'idx2', 'rate');
          expect(store.usage).toMatchObject({ entries: 0, bytes: 0 });
        } finally {
          await store.close();
        }
      }),
    );
  });
});

describe('session bindings: nothing the client chose is kept', () => {
  const huge = 'v'.repeat(MB);

  it('binds a version the gateway speaks, whatever initialize asked for', async () => {
    const store = memoryStore();
    const sessions = new SessionBindings(store, { idleTimeoutMs: 60_000, maxPerPrincipal: 8 });
    await sessions.recordAnswer({ method: 'POST', status: 200, sessionId: undefined, assignedSessionId: 's1' }, { principal: 'alice', route: 'todo', protocolVersion: huge });
    await sessions.bind('s2', { principal: 'alice', route: 'todo', protocolVersion: '2025-11-25' });
    expect(await sessions.authorize('todo', 's1', 'alice')).toEqual({ principal: 'alice', route: 'todo', protocolVersion: '2025-03-26' });
    expect(await sessions.authorize('todo', 's2', 'alice')).toMatchObject({ protocolVersion: '2025-11-25' });
    expect(store.usage.bytes).toBeLessThan(1_000);
    expect(sessions.parsedCacheUsage.chars).toBeLessThan(200);
  });

  it('a binding stored before versions were checked keeps its owner, is not cached, and its version is not kept', async () => {
    const store = memoryStore();
    const sessions = new SessionBindings(store, { idleTimeoutMs: 60_000, maxPerPrincipal: 8 });
    await store.set('session:todo:old', JSON.stringify({ principal: 'alice', route: 'todo', protocolVersion: huge }), 60_000);
    for (let i = 0; i < 3; i++) expect(await sessions.authorize('todo', 'old', 'alice')).toEqual({ principal: 'alice', route: 'todo', protocolVersion: '2025-03-26' });
    expect((await rejectionOf(Promise.resolve().then(() => sessions.authorize('todo', 'old', 'mallory')))).code).toBe('session_not_found');
    expect(sessions.parsedCacheUsage).toEqual({ entries: 0, chars: 0 });
  });

  it('the parsed-binding cache stays within its characters, however long the principals', async () => {
    const store = memoryStore({ maxBytes: 512 * 1024 * 1024 });
    const sessions = new SessionBindings(store, { idleTimeoutMs: 60_000, maxPerPrincipal: 8 });
    const subject = 's'.repeat(7_000); // under the per-binding limit: each is cached
    for (let i = 0; i < 600; i++) {
      const principal = `${subject}${i}`;
      await sessions.bind(`id${i}`, { principal, route: 'todo', protocolVersion: '2025-06-18' });
      await sessions.authorize('todo', `id${i}`, principal);
      expect(sessions.parsedCacheUsage.chars).toBeLessThanOrEqual(2 * 1024 * 1024);
    }
    expect(sessions.parsedCacheUsage.entries).toBeGreaterThan(0);
  });

  it('refuses an initialize before forwarding when the store has no room for its binding', async () => {
    const store = memoryStore({ maxEntries: 10 });
    const sessions = new SessionBindings(store, { idleTimeoutMs: 60_000, maxPerPrincipal: 64 });
    for (let i = 0; i < 7; i++) await store.set(`other:${i}`, 'v', 60_000);
    await sessions.ensureAvailable(); // 7 + 2 fits under 10 less the headroom
    await store.set('other:7', 'v', 60_000);
    const refusal = await rejectionOf(sessions.ensureAvailable());
    expect(refusal.code).toBe('store_unavailable');
    expect(refusal.details.retryAfterSeconds).toBe(1);
    expect(store.usage.entries).toBe(8);
  });
});

describe('verified-token cache: bounded by length as well as count', () => {
  const principal = (subject: string): Principal => ({ issuer: 'https://idp', subject, clientId: undefined, scopes: new Set(['a']), expiresAt: 10_000, claims: {} });

  it('evicts the least recently used tokens to stay within its characters', () => {
    const cache = new VerifiedTokenCache(1_000, () => 0, 60_000, 10_000);
    for (let i = 0; i < 100; i++) cache.set('r', `${'t'.repeat(150)}${i}`, principal(`p${i}`));
    expect(cache.totalChars).toBeLessThanOrEqual(10_000);
    expect(cache.size).toBeLessThan(100);
    expect(cache.get('r', `${'t'.repeat(150)}99`)?.subject).toBe('p99');
    expect(cache.get('r', `${'t'.repeat(150)}0`)).toBeUndefined();
  });

  it('does not cache a token longer than a 64th of its characters; short ones still are', () => {
    const cache = new VerifiedTokenCache(1_000, () => 0, 60_000, 64_000);
    cache.set('r', 'x'.repeat(1_001), principal('long'));
    cache.set('r', 'x'.repeat(1_000), principal('short'));
    expect(cache.get('r', 'x'.repeat(1_001))).toBeUndefined();
    expect(cache.get('r', 'x'.repeat(1_000))?.subject).toBe('short');
    expect(cache.totalChars).toBe(1_000);
  });

  it('gives back the characters of an entry that expired', () => {
    let now = 0;
    const cache = new VerifiedTokenCache(10, () => now, 1_000, 10_000);
    cache.set('r', 'token', principal('p'));
    now = 1_000;
    expect(cache.get('r', 'token')).toBeUndefined();
    expect(cache.totalChars).toBe(0);
  });
});
