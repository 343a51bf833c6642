import { createHash } from 'node:crypto';
import { compactDecrypt, CompactEncrypt } from 'jose';
import { BoundedMap } from '../cache/bounded-map.js';
import type { Logger } from '../observability/logger.js';
import type { KeyValueStore } from '../store/types.js';

/** An exchanged credential, ready to send: the whole header value, and until when to reuse it. */
export interface CachedCredential {
  readonly header: string;
  /** Milliseconds since the epoch. */
  readonly reuseUntilMs: number;
}

const MAX_CACHED = 10_000;
/** Their keys' and header values' length in all: JWTs run to kilobytes each. */
const MAX_CACHED_CHARS = 32 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Exchanged credentials, by principal: in this process (what a request reads: one map lookup),
 * and, given a key, in the store so that replicas share them, encrypted (JWE compact, RFC 7516,
 * `dir` + `A256GCM`: the store never holds a usable credential). The store key is a hash of the
 * route's exchange and the principal, so the store does not learn who either is; the entry
 * names its own key inside the ciphertext, so an entry copied under another principal's key is
 * not accepted.
 */
export class CredentialCache {
  private readonly memory = new BoundedMap<string, CachedCredential>({
    maxEntries: MAX_CACHED,
    maxWeight: MAX_CACHED_CHARS,
    maxEntryWeight: MAX_CACHED_CHARS / 256,
    weigh: (key, value) => key.length + value.header.length,
  });
  private readonly key: Uint8Array | undefined;

  constructor(
    /** Tells this route's exchange apart from every other in the store (see storeKeyOf). */
    private readonly namespace: string,
    private readonly store: KeyValueStore | undefined,
    key: string | undefined,
    private readonly logger: Logger,
  ) {
    this.key = key === undefined ? undefined : Buffer.from(key, 'base64url');
  }

  /** Sync, allocation-free: what a request with a cached credential pays. */
  get(principal: string): CachedCredential | undefined {
    return this.memory.get(principal);
  }

  /** The store's copy (another replica's exchange), or undefined: a store that fails only costs an exchange. */
  async shared(principal: string): Promise<CachedCredential | undefined> {
    if (!this.store || !this.key) return undefined;
    const storeKey = this.storeKeyOf(principal);
    const sealed = await this.store.get(storeKey).catch(() => undefined);
    if (sealed === undefined) return undefined;
    try {
      const { plaintext } = await compactDecrypt(sealed, this.key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
      const entry = JSON.parse(decoder.decode(plaintext)) as { k?: unknown; h?: unknown; u?: unknown };
      if (entry.k !== storeKey || typeof entry.h !== 'string' || typeof entry.u !== 'number' || entry.u <= Date.now()) return undefined;
      const credential = { header: entry.h, reuseUntilMs: entry.u };
      this.memory.set(principal, credential, credential.reuseUntilMs);
      return credential;
    } catch {
      // Sealed under another key (rotated), or not by the gateway: as good as absent.
      return undefined;
    }
  }

  /** Kept here at once; written to the store in the background (a failed write costs replicas an exchange). */
  put(principal: string, credential: CachedCredential): void {
    this.memory.set(principal, credential, credential.reuseUntilMs);
    if (!this.store || !this.key) return;
    const ttlMs = credential.reuseUntilMs - Date.now();
    if (ttlMs <= 0) return;
    const storeKey = this.storeKeyOf(principal);
    const store = this.store;
    new CompactEncrypt(encoder.encode(JSON.stringify({ k: storeKey, h: credential.header, u: credential.reuseUntilMs })))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .encrypt(this.key)
      .then((sealed) => store.set(storeKey, sealed, ttlMs))
      .catch((error: unknown) => this.logger.warn({ err: (error as Error).message }, 'exchanged credential not shared through the store'));
  }

  /** Forgets the credential if it is still `header` (a fresher one obtained meanwhile stays), here and in the store. */
  async forget(principal: string, header: string): Promise<void> {
    const held = this.memory.get(principal);
    if (held !== undefined && held.header !== header) return;
    this.memory.delete(principal);
    if (this.store && this.key) await this.store.delete(this.storeKeyOf(principal)).catch(() => undefined);
  }

  private storeKeyOf(principal: string): string {
    return `upstream-credential:${createHash('sha256').update(this.namespace).update('\u0000').update(principal).digest('base64url')}`;
  }
}
