import { CompactEncrypt, compactDecrypt } from 'jose';
import type { KeyValueStore } from '../store/types.js';
import { KEYS } from './records.js';
import { digest } from './secrets.js';

/** What the IdP gave the gateway for a user: kept for the upstream-credentials work, never sent to an MCP client. */
export interface IdpTokenSet {
  readonly accessToken: string;
  readonly refreshToken?: string;
  readonly idToken?: string;
  /** Seconds since the epoch. */
  readonly expiresAt?: number;
  readonly scope?: string;
}

/**
 * The IdP's tokens, sealed with the operator's key (authorizationServer.upstream
 * .tokenEncryptionKeyFile) as a compact JWE, `dir` + `A256GCM` (RFC 7516, RFC 7518 §4.5, §5.3):
 * a copy of the store is not a copy of anyone's IdP tokens. The user's subject is the additional
 * authenticated data, so a sealed set moved to another user's key does not open.
 */
export class IdpTokenVault {
  private readonly key: Uint8Array;

  constructor(
    private readonly store: KeyValueStore,
    keyBase64url: string,
  ) {
    this.key = Buffer.from(keyBase64url, 'base64url');
  }

  seal(subject: string, tokens: IdpTokenSet): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(tokens)))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', sub: digest(subject) })
      .encrypt(this.key);
  }

  async open(subject: string, sealed: string): Promise<IdpTokenSet> {
    const { plaintext, protectedHeader } = await compactDecrypt(sealed, this.key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
    if (protectedHeader.sub !== digest(subject)) throw new Error('sealed IdP tokens belong to another user');
    return JSON.parse(new TextDecoder().decode(plaintext)) as IdpTokenSet;
  }

  async keep(subject: string, sealed: string, ttlMs: number): Promise<void> {
    await this.store.set(KEYS.idpTokens(digest(subject)), sealed, ttlMs);
  }

  async read(subject: string): Promise<IdpTokenSet | undefined> {
    const sealed = await this.store.get(KEYS.idpTokens(digest(subject)));
    return sealed === undefined ? undefined : this.open(subject, sealed);
  }
}
