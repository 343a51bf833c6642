import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { VerifiedTokenCache } from '../../src/auth/token-cache.js';

const principal = (subject: string, expiresAt: number): Principal => ({ issuer: 'https://idp', subject, clientId: undefined, scopes: new Set(['a']), expiresAt, claims: {} });

describe('verified-token cache', () => {
  it('returns the principal of a token verified for the same route, and nothing for another route', () => {
    const cache = new VerifiedTokenCache(10, () => 1_000_000);
    const alice = principal('alice', 2_000);
    cache.set('todo', 'token-a', alice);
    expect(cache.get('todo', 'token-a')).toBe(alice);
    expect(cache.get('admin', 'token-a')).toBeUndefined();
    expect(cache.get('todo', 'token-b')).toBeUndefined();
  });

  it('never serves a token past its exp, and does not store one already expired', () => {
    let now = 1_000_000;
    const cache = new VerifiedTokenCache(10, () => now);
    const alice = principal('alice', 1_001); // exp 1001 s = 1_001_000 ms
    cache.set('todo', 'token-a', alice);
    expect(cache.get('todo', 'token-a')).toBe(alice);
    now = 1_001_000;
    expect(cache.get('todo', 'token-a')).toBeUndefined();
    expect(cache.size).toBe(0);
    cache.set('todo', 'token-old', principal('bob', 999));
    expect(cache.size).toBe(0);
  });

  it('re-verifies a long-lived token after the maximum age, so a removed key stops admitting it', () => {
    let now = 0;
    const cache = new VerifiedTokenCache(10, () => now, 60_000);
    const alice = principal('alice', 3_600);
    cache.set('r', 't', alice);
    now = 59_999;
    expect(cache.get('r', 't')).toBe(alice);
    now = 60_000;
    expect(cache.get('r', 't')).toBeUndefined();
  });

  it('is bounded: the least recently used entry goes first', () => {
    const cache = new VerifiedTokenCache(2, () => 0);
    cache.set('r', 't1', principal('one', 10));
    cache.set('r', 't2', principal('two', 10));
    expect(cache.get('r', 't1')?.subject).toBe('one'); // t1 is now the most recent
    cache.set('r', 't3', principal('three', 10));
    expect(cache.size).toBe(2);
    expect(cache.get('r', 't2')).toBeUndefined();
    expect(cache.get('r', 't1')?.subject).toBe('one');
    expect(cache.get('r', 't3')?.subject).toBe('three');
  });

  it('keeps no token text, only its hash', () => {
    const cache = new VerifiedTokenCache(10, () => 0);
    const token = 'eyJhbGciOiJSUzI1NiJ9.secret-payload.signature';
    cache.set('r', token, principal('alice', 10));
    const keys = [...(cache as unknown as { entries: Map<string, unknown> }).entries.keys()];
    expect(keys).toHaveLength(1);
    expect(keys[0]).not.toContain('secret-payload');
  });
});
