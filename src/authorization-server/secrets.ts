import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Random handles and their digests. Codes, refresh tokens, pending-authorization ids and CSRF
 * tokens are 256 random bits (RFC 6749 §10.10: guessing one must be infeasible); the store keeps
 * only their SHA-256, so reading the store gives nothing that can be redeemed.
 */
export function randomHandle(): string {
  return randomBytes(32).toString('base64url');
}

export function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** Equality that takes as long whatever the first difference: for secrets a caller presents. */
export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
