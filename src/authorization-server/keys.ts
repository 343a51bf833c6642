import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { JSONWebKeySet, JWK } from 'jose';
import { signingAlgorithm } from '../config/signing-keys.js';

/** Members of a private JWK that the published copy must never carry (RFC 7518 §6.2.2, §6.3.2). */
const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);

export interface SigningKey {
  readonly kid: string;
  readonly alg: 'ES256' | 'RS256' | 'PS256';
  readonly key: KeyObject;
}

/**
 * The authorization server's signing keys: the first signs, every one is published at jwks_uri
 * (rotation: a new key goes first while the old one stays until its tokens expired; the file is
 * read on reload, so no restart). Made synchronously, so a reload can build it in place.
 */
export class SigningKeys {
  readonly current: SigningKey;
  /** Public keys only, as jwks_uri serves them and the gateway's own issuer entry trusts them. */
  readonly publicJwks: JSONWebKeySet;
  private constructor(jwks: readonly JWK[]) {
    const keys = jwks.map((jwk) => ({ kid: jwk.kid!, alg: signingAlgorithm(jwk), key: createPrivateKey({ key: jwk as never, format: 'jwk' }) }));
    this.current = keys[0]!;
    this.publicJwks = { keys: jwks.map((jwk) => publicJwk(jwk)) };
  }

  static fromJwks(jwks: readonly JWK[]): SigningKeys {
    return new SigningKeys(jwks);
  }

  /** One ES256 key for this process alone: what runs when no signingKeys file is configured. */
  static generate(): SigningKeys {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid: `generated-${randomBytes(8).toString('hex')}` };
    return new SigningKeys([jwk]);
  }
}

function publicJwk(jwk: JWK): JWK {
  const entries = Object.entries(jwk).filter(([member]) => !PRIVATE_MEMBERS.has(member));
  return { ...Object.fromEntries(entries), alg: signingAlgorithm(jwk), use: 'sig' } as JWK;
}
