import { createHash, randomBytes } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { MemoryStore } from '../../src/store/memory.js';
import { CredentialCache } from '../../src/upstream-auth/cache.js';

/**
 * Exchanged credentials shared by replicas through the store (issue 26): sealed with JWE
 * dir + A256GCM under the configured key, each bound to its own store key, readable only by a
 * gateway holding the key. Two caches over one store play two replicas.
 */

const KEY = randomBytes(32).toString('base64url');
const logger = createLogger('silent');
const ALICE = JSON.stringify(['https://idp', 'alice', 'client']);
const BOB = JSON.stringify(['https://idp', 'bob', 'client']);
/** The store key scheme (part of the stored format): a hash of the route's exchange and the principal. */
const storeKeyOf = (namespace: string, principal: string) => `upstream-credential:${createHash('sha256').update(namespace).update('\u0000').update(principal).digest('base64url')}`;
const fresh = (header: string) => ({ header, reuseUntilMs: Date.now() + 60_000 });
/** The background write lands after the encryption's promise: waited for, however loaded the machine. */
const written = (store: MemoryStore, principal: string) =>
  vi.waitFor(async () => expect(await store.get(storeKeyOf('route', principal))).toEqual(expect.any(String)), { timeout: 5_000 });
/** Time for a write that must not happen (put returns before any async work when it will not write). */
const settled = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('CredentialCache', () => {
  it('shares a credential with another replica through the store, sealed, and keeps it in memory once read', async () => {
    const store = new MemoryStore();
    const one = new CredentialCache('route', store, KEY, logger);
    const two = new CredentialCache('route', store, KEY, logger);
    one.put(ALICE, fresh('Bearer alice-upstream-token'));
    await written(store, ALICE);
    expect(one.get(ALICE)?.header).toBe('Bearer alice-upstream-token');
    expect(two.get(ALICE)).toBeUndefined();
    expect((await two.shared(ALICE))?.header).toBe('Bearer alice-upstream-token');
    expect(two.get(ALICE)?.header).toBe('Bearer alice-upstream-token');

    const sealed = (await store.get(storeKeyOf('route', ALICE)))!;
    expect(sealed.split('.')).toHaveLength(5);
    expect(decodeProtectedHeader(sealed)).toEqual({ alg: 'dir', enc: 'A256GCM' });
    expect(sealed).not.toContain('alice');
    expect(Buffer.from(sealed.split('.')[3]!, 'base64url').toString('latin1')).not.toContain('alice-upstream-token');
  });

  it('reads nothing under another key, another route, or an entry moved to another principal', async () => {
    const store = new MemoryStore();
    new CredentialCache('route', store, KEY, logger).put(ALICE, fresh('Bearer alice-upstream-token'));
    await written(store, ALICE);
    expect(await new CredentialCache('route', store, randomBytes(32).toString('base64url'), logger).shared(ALICE)).toBeUndefined();
    expect(await new CredentialCache('other-route', store, KEY, logger).shared(ALICE)).toBeUndefined();
    // Someone with write access to the store copies Alice's entry to Bob's key.
    await store.set(storeKeyOf('route', BOB), (await store.get(storeKeyOf('route', ALICE)))!, 60_000);
    expect(await new CredentialCache('route', store, KEY, logger).shared(BOB)).toBeUndefined();
    // Positive control: Alice's own entry reads.
    expect((await new CredentialCache('route', store, KEY, logger).shared(ALICE))?.header).toBe('Bearer alice-upstream-token');
  });

  it('keeps nothing past its reuse time, and nothing in the store without a key', async () => {
    const store = new MemoryStore();
    const cache = new CredentialCache('route', store, KEY, logger);
    cache.put(ALICE, { header: 'Bearer stale', reuseUntilMs: Date.now() - 1 });
    await settled();
    expect(cache.get(ALICE)).toBeUndefined();
    expect(await store.get(storeKeyOf('route', ALICE))).toBeUndefined();

    const local = new CredentialCache('route', store, undefined, logger);
    local.put(ALICE, fresh('Bearer local'));
    await settled();
    expect(local.get(ALICE)?.header).toBe('Bearer local');
    expect(await store.get(storeKeyOf('route', ALICE))).toBeUndefined();
    expect(await local.shared(ALICE)).toBeUndefined();
  });

  it('forgets a refused credential here and in the store, but not a fresher one obtained meanwhile', async () => {
    const store = new MemoryStore();
    const cache = new CredentialCache('route', store, KEY, logger);
    cache.put(ALICE, fresh('Bearer refused'));
    await written(store, ALICE);
    await cache.forget(ALICE, 'Bearer refused');
    expect(cache.get(ALICE)).toBeUndefined();
    expect(await store.get(storeKeyOf('route', ALICE))).toBeUndefined();

    cache.put(ALICE, fresh('Bearer fresher'));
    await written(store, ALICE);
    await cache.forget(ALICE, 'Bearer refused');
    expect(cache.get(ALICE)?.header).toBe('Bearer fresher');
    expect(await store.get(storeKeyOf('route', ALICE))).toEqual(expect.any(String));
  });
});
