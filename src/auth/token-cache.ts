import * as crypto from 'node:crypto';
import { BoundedMap } from '../cache/bounded-map.js';
import type { Principal } from './principal.js';

/**
 * Principals of tokens already verified, so a client's repeated requests do not pay signature
 * verification each time (the gateway's largest per-request cost). Keyed by a SHA-256 of the
 * token, never the token itself, and by route, since a token's audience and issuer trust are
 * checked per route. An entry never outlives the token's `exp`, nor 10 minutes (the key set's
 * refresh age: a key the IdP removed stops admitting tokens); the cache is bounded in entries
 * and in the length of the tokens behind them (an entry holds the token's claims, about as
 * large), least recently used first out, so a flood of distinct tokens cannot grow memory.
 */
export class VerifiedTokenCache {
  private readonly entries: BoundedMap<string, CachedToken>;

  constructor(
    maxEntries = 10_000,
    private readonly now: () => number = Date.now,
    /** Even a long-lived token is re-verified this often, so a key the IdP removed stops admitting it. */
    private readonly maxAgeMs = 10 * 60_000,
    /** The cached tokens' lengths in all; a token longer than a 64th of it is not cached. */
    maxChars = 32 * 1024 * 1024,
  ) {
    this.entries = new BoundedMap({ maxEntries, maxWeight: maxChars, maxEntryWeight: maxChars / 64, weigh: (_, entry) => entry.chars, order: 'use', now });
  }

  get(route: string, token: string): Principal | undefined {
    return this.entry(route, token)?.principal;
  }

  /** As get(), with how long the entry stays good (see isCurrent). */
  entry(route: string, token: string): VerifiedToken | undefined {
    return this.entries.get(cacheKey(route, token));
  }

  /** Whether an entry this cache handed out may still admit its token (its exp and the maximum age). */
  isCurrent(entry: VerifiedToken): boolean {
    return entry.until > this.now();
  }

  set(route: string, token: string, principal: Principal): void {
    const until = Math.min(principal.expiresAt * 1000, this.now() + this.maxAgeMs);
    this.entries.set(cacheKey(route, token), { principal, until, chars: token.length }, until);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached tokens' lengths in all (see maxChars). */
  get totalChars(): number {
    return this.entries.weight;
  }
}

export interface VerifiedToken {
  readonly principal: Principal;
  /** Milliseconds since the epoch: the token's exp, or the maximum age, whichever comes first. */
  readonly until: number;
}

interface CachedToken extends VerifiedToken {
  /** The token's length: what the entry counts against the cache's maxChars. */
  readonly chars: number;
}

/** crypto.hash (Node 20.12+) digests in one call, without a Hash object per request. */
const sha256: (data: string) => string =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('sha256', data, 'base64url') : (data) => crypto.createHash('sha256').update(data).digest('base64url');

function cacheKey(route: string, token: string): string {
  return `${route}\u0000${sha256(token)}`;
}
