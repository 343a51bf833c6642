import { afterEach, describe, expect, it } from 'vitest';
import { SessionBindings } from '../../src/mcp/sessions.js';
import { MemoryStore, StoreFullError } from '../../src/store/memory.js';
import { rejectionOf } from '../support/refusals.js';

const binding = (principal: string) => ({ principal, route: 'todo', protocolVersion: '2025-06-18' });

/** authorize() as a promise, whether the store answered at once (a refusal thrown) or not. */
const authorize = async (sessions: SessionBindings, route: string, sessionId: string, principal: string) => sessions.authorize(route, sessionId, principal);

describe('session bindings', () => {
  const stores: MemoryStore[] = [];
  const bindings = (maxPerPrincipal = 3, maxEntries = 1_000, now: () => number = Date.now) => {
    const store = new MemoryStore(maxEntries, now);
    stores.push(store);
    return new SessionBindings(store, { idleTimeoutMs: 60_000, maxPerPrincipal });
  };
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  it("lets the owner use a session and refuses anyone else's with session_not_found", async () => {
    const sessions = bindings();
    await sessions.bind('s1', binding('alice'));
    await expect(authorize(sessions, 'todo', 's1', 'alice')).resolves.toMatchObject({ principal: 'alice' });
    expect((await rejectionOf(authorize(sessions, 'todo', 's1', 'bob'))).code).toBe('session_not_found');
    expect((await rejectionOf(authorize(sessions, 'other-route', 's1', 'alice'))).code).toBe('session_not_found');
  });

  it('forgets a session', async () => {
    const sessions = bindings();
    await sessions.bind('s1', binding('alice'));
    await sessions.forget('todo', 's1', 'alice');
    expect((await rejectionOf(authorize(sessions, 'todo', 's1', 'alice'))).code).toBe('session_not_found');
  });

  it("past the per-principal cap ends that principal's oldest session, never anyone else's", async () => {
    const sessions = bindings(3);
    await sessions.bind('bob-1', binding('bob'));
    for (let i = 1; i <= 5; i++) await sessions.bind(`alice-${i}`, binding('alice'));
    for (const gone of ['alice-1', 'alice-2']) expect((await rejectionOf(authorize(sessions, 'todo', gone, 'alice'))).code).toBe('session_not_found');
    for (const kept of ['alice-3', 'alice-4', 'alice-5']) await expect(authorize(sessions, 'todo', kept, 'alice')).resolves.toEqual(binding('alice'));
    await expect(authorize(sessions, 'todo', 'bob-1', 'bob')).resolves.toEqual(binding('bob'));
  });

  it('does not count sessions that already expired against the cap', async () => {
    let now = 0;
    const sessions = bindings(2, 1_000, () => now);
    await sessions.bind('old', binding('alice'));
    now += 61_000; // 'old' has expired
    await sessions.bind('new-1', binding('alice'));
    await sessions.bind('new-2', binding('alice'));
    await sessions.bind('new-3', binding('alice')); // one over: ends new-1, the oldest still alive
    await expect(authorize(sessions, 'todo', 'new-2', 'alice')).resolves.toEqual(binding('alice'));
    await expect(authorize(sessions, 'todo', 'new-3', 'alice')).resolves.toEqual(binding('alice'));
    expect((await rejectionOf(authorize(sessions, 'todo', 'new-1', 'alice'))).code).toBe('session_not_found');
  });

  it('fails closed with store_unavailable when the store is full, keeping existing sessions', async () => {
    const sessions = bindings(64, 4);
    await sessions.bind('s1', binding('alice')); // binding + index: 2 entries
    await sessions.bind('s2', binding('bob')); // 4 entries: full
    expect((await rejectionOf(sessions.bind('s3', binding('carol')))).code).toBe('store_unavailable');
    await expect(authorize(sessions, 'todo', 's1', 'alice')).resolves.toEqual(binding('alice'));
    await expect(authorize(sessions, 'todo', 's2', 'bob')).resolves.toEqual(binding('bob'));
  });
});

describe('session checks against the store', () => {
  const limits = { idleTimeoutMs: 60_000, maxPerPrincipal: 3 };

  it('slides the idle window on every check, and forgets a session idle past it', async () => {
    let now = 0;
    const store = new MemoryStore(1_000, () => now);
    const sessions = new SessionBindings(store, limits);
    await sessions.bind('s1', binding('alice'));
    now = 50_000;
    await expect(sessions.authorize('todo', 's1', 'alice')).resolves.toMatchObject({ principal: 'alice' });
    now = 100_000; // past the first window, within the one the check above restarted
    await expect(sessions.authorize('todo', 's1', 'alice')).resolves.toMatchObject({ principal: 'alice' });
    expect((await rejectionOf(sessions.authorize('todo', 's1', 'bob'))).code).toBe('session_not_found');
    now = 200_000; // idle past the window: gone
    expect((await rejectionOf(sessions.authorize('todo', 's1', 'alice'))).code).toBe('session_not_found');
    await store.close();
  });

  it('fails closed with store_unavailable when the store fails', async () => {
    const store = new MemoryStore();
    const broken = new Proxy(store, {
      get(target, name) {
        if (name === 'getAndTouch') return () => Promise.reject(new Error('broken'));
        const value: unknown = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const sessions = new SessionBindings(broken, limits);
    expect((await rejectionOf(sessions.authorize('todo', 's1', 'alice'))).code).toBe('store_unavailable');
    await store.close();
  });
});

describe('session bindings over a damaged store value', () => {
  it('treats a binding that does not parse, or lacks its owner, as an unknown session (404), not a 500', async () => {
    const store = new MemoryStore();
    const sessions = new SessionBindings(store, { idleTimeoutMs: 60_000, maxPerPrincipal: 3 });
    for (const [id, value] of [['garbage', '{not json'], ['null', 'null'], ['ownerless', '{"route":"todo","protocolVersion":"2025-06-18"}']]) {
      await store.set(`session:todo:${id}`, value!, 60_000);
      expect((await rejectionOf(authorize(sessions, 'todo', id!, 'alice'))).code).toBe('session_not_found');
    }
    await store.close();
  });
});

describe('memory store', () => {
  it('expires entries after their TTL and refuses new keys when full rather than evict', async () => {
    let now = 0;
    const store = new MemoryStore(2, () => now);
    await store.set('a', '1', 100);
    await store.set('b', '2', 1_000);
    await expect(store.set('c', '3', 100)).rejects.toBeInstanceOf(StoreFullError);
    await store.set('a', 'updated', 100); // an existing key can always be updated
    expect(await store.get('a')).toBe('updated');
    now = 150;
    expect(await store.get('a')).toBeUndefined();
    await store.set('c', '3', 100); // the expired entry made room
    expect(await store.get('c')).toBe('3');
    await store.close();
  });
});
