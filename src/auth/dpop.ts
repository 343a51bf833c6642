import { createHash } from 'node:crypto';
import { base64url, calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, errors, jwtVerify, type JWK } from 'jose';
import { ASYMMETRIC_ALGORITHMS } from '../config/types.js';
import { Refusal } from '../errors.js';
import { comparableHttpUri, expectedComparable } from './http-uri.js';

/** Algorithms accepted for DPoP proofs (RFC 9449 §4.2: asymmetric only), and offered in challenges. */
export const DPOP_ALGORITHMS: readonly string[] = ASYMMETRIC_ALGORITHMS;
/** How old a proof may be (RFC 9449 §11.1: a short window limits pre-generated proofs). */
export const DPOP_PROOF_MAX_AGE_SECONDS = 60;

export interface DpopExpectations {
  /** The request's method and the URI the client used (RFC 9449 §4.3 items 8 and 9). */
  readonly method: string;
  readonly uri: string;
  /** The access token presented with the proof: `ath` must be its hash (§4.3 item 11). */
  readonly accessToken: string;
  /** The token's `cnf.jkt`: the proof's key must be that key (§6.1). */
  readonly jkt: string;
  readonly nowSeconds: number;
  readonly clockToleranceSeconds: number;
}

export interface VerifiedProof {
  readonly jti: string;
  /** How long the jti must be remembered to refuse a replay within the proof's window. */
  readonly replayWindowSeconds: number;
}

/** The refusal for a bad proof, with the DPoP challenge naming the algorithms accepted (§7.1). */
export function invalidProof(description: string): Refusal {
  return new Refusal('invalid_dpop_proof', description, { dpop: { algs: DPOP_ALGORITHMS } });
}

/**
 * Verifies a DPoP proof for one request (RFC 9449 §4.3): a `dpop+jwt` signed with an asymmetric
 * algorithm by the public key in its own `jwk` header, for this method and URI, recent, bound to
 * this access token (`ath`) and made with the key the token is bound to (`jkt`). The jti is
 * returned for the caller's single-use check in the store.
 */
export async function verifyDpopProof(proof: string, expect: DpopExpectations): Promise<VerifiedProof> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw invalidProof('The DPoP proof is malformed');
  }
  const jwk = header.jwk as JWK | undefined;
  // §4.3 item 6: the jwk header is a public key; a private one means the client leaked it.
  if (!jwk || typeof jwk !== 'object' || 'd' in jwk) throw invalidProof('The DPoP proof carries no public key');
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: DPOP_ALGORITHMS as string[],
      requiredClaims: ['jti', 'htm', 'htu', 'iat'],
      currentDate: new Date(expect.nowSeconds * 1000),
      clockTolerance: expect.clockToleranceSeconds,
    }));
  } catch (error) {
    if (error instanceof errors.JOSEError && error.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') throw invalidProof('The DPoP proof is missing a required claim or has the wrong typ');
    throw invalidProof('The DPoP proof signature or algorithm is invalid');
  }
  if (payload.htm !== expect.method) throw invalidProof('The DPoP proof is for another method');
  if (typeof payload.htu !== 'string' || !sameUri(payload.htu, expect.uri)) throw invalidProof('The DPoP proof is for another URI');
  const iat = payload.iat as number;
  if (iat > expect.nowSeconds + expect.clockToleranceSeconds) throw invalidProof('The DPoP proof is issued in the future');
  if (iat < expect.nowSeconds - DPOP_PROOF_MAX_AGE_SECONDS - expect.clockToleranceSeconds) throw invalidProof('The DPoP proof is too old');
  if (payload.ath !== accessTokenHash(expect.accessToken)) throw invalidProof('The DPoP proof is not for this access token');
  if ((await calculateJwkThumbprint(jwk, 'sha256')) !== expect.jkt) throw invalidProof('The DPoP proof key is not the key the token is bound to');
  if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > 256) throw invalidProof('The DPoP proof jti is invalid');
  // Remembered for as long as any replica could still accept the proof: from its iat to the end
  // of the window, plus a second for whole-second rounding and a margin for replica clock skew.
  const acceptedUntil = iat + DPOP_PROOF_MAX_AGE_SECONDS + expect.clockToleranceSeconds + 1;
  return { jti: payload.jti, replayWindowSeconds: Math.max(1, acceptedUntil - expect.nowSeconds) + expect.clockToleranceSeconds + 5 };
}

/** RFC 9449 §4.2 `ath`: base64url of the SHA-256 of the access token's ASCII. */
export function accessTokenHash(accessToken: string): string {
  return base64url.encode(createHash('sha256').update(accessToken, 'ascii').digest());
}

/**
 * §4.3 item 9: `htu` is the request's URI without query and fragment. Compared by the rule of
 * http-uri.ts (scheme and host case-insensitively, the default port dropped, nothing else: the
 * syntax-based normalization §4.3 suggests, dot segments and percent-decoding, is not done, so a
 * proof for `/other/../mcp` or with userinfo is for another URI). `uri` is the route's resource.
 */
function sameUri(htu: string, uri: string): boolean {
  const expected = expectedComparable(uri, true);
  return expected !== undefined && comparableHttpUri(htu, true) === expected;
}
