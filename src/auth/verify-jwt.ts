import { base64url, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { IssuerConfig } from '../config/types.js';
import { Refusal } from '../errors.js';
import { issuerUnavailable } from './key-set.js';
import { normalizeTyp } from './claims.js';
import { principalFromClaims, type Principal } from './principal.js';

export interface TrustedIssuer {
  readonly config: IssuerConfig;
  readonly keys: JWTVerifyGetKey;
}

/** Reads `iss` without trusting it, only to pick the key set; never used as a result. */
export function unverifiedIssuer(token: string): string {
  try {
    const { iss } = decodeJwt(token);
    if (typeof iss === 'string') return iss;
  } catch {
    // fall through: not a JWT we can read
  }
  throw new Refusal('invalid_token', 'The access token is malformed', { tokenFailure: 'malformed' });
}

/**
 * Verifies a JWT access token for one resource (RFC 9068 §4): `typ` among the issuer's accepted
 * values (at+jwt unless the issuer's IdP uses plain JWT), signature with the issuer's keys and
 * an asymmetric algorithm allowlist, `iss`, `aud` containing the resource (RFC 8707; MCP
 * authorization §Token Audience Binding and Validation) or one of the issuer's configured
 * audiences, `exp`/`nbf` with the issuer's clock tolerance, and a subject. Scopes, subject and
 * client come from the claims the issuer's mapping names.
 */
export async function verifyJwtAccessToken(
  token: string,
  issuer: TrustedIssuer,
  resource: string,
  now?: Date,
): Promise<Principal> {
  const { config } = issuer;
  try {
    if (!isCanonicalCompact(token)) throw new Refusal('invalid_token', 'The access token is malformed', { tokenFailure: 'malformed' });
    if (!config.typ.includes(typOf(token))) throw new Refusal('invalid_token', 'The access token type is not accepted', { tokenFailure: 'type' });
    const { payload } = await jwtVerify(token, issuer.keys, {
      issuer: config.issuer,
      algorithms: config.algorithms as string[],
      clockTolerance: config.clockToleranceSeconds,
      requiredClaims: ['exp', 'aud'],
      ...(now ? { currentDate: now } : {}),
    });
    // jose checks iat only against a maximum age; a token minted in the future is not one the
    // IdP issued now (RFC 7519 §4.1.6), so it is refused beyond the clock tolerance.
    const nowSeconds = Math.floor((now?.getTime() ?? Date.now()) / 1000);
    if (typeof payload.iat === 'number' && payload.iat > nowSeconds + config.clockToleranceSeconds) {
      throw new Refusal('invalid_token', 'The access token was issued in the future', { tokenFailure: 'not-yet-valid' });
    }
    return principalFromClaims(payload, config, resource, payload.exp!);
  } catch (error) {
    throw toInvalidToken(error);
  }
}

/**
 * Each segment is canonical base64url (RFC 7515 §2: no padding, no stray bits): the same bytes
 * have exactly one spelling, so a holder cannot mint look-alike copies of a valid token that
 * anything keyed by the token string (the verified-token cache, logs) would count as new.
 */
function isCanonicalCompact(token: string): boolean {
  const segments = token.split('.');
  if (segments.length !== 3) return true; // not a JWS: jwtVerify refuses it with its own reason
  return segments.every((segment) => {
    if (!/^[A-Za-z0-9_-]*$/.test(segment)) return false;
    try {
      return base64url.encode(base64url.decode(segment)) === segment;
    } catch {
      return false;
    }
  });
}

/** The normalized typ header, or `absent`; a header that does not decode is refused by jwtVerify anyway. */
function typOf(token: string): string {
  let typ: unknown;
  try {
    typ = decodeProtectedHeader(token).typ;
  } catch {
    throw new Refusal('invalid_token', 'The access token is malformed', { tokenFailure: 'malformed' });
  }
  if (typ === undefined) return 'absent';
  if (typeof typ !== 'string') throw new Refusal('invalid_token', 'The access token type is not accepted', { tokenFailure: 'type' });
  return normalizeTyp(typ);
}

/** Short, safe descriptions: enough for a client developer, nothing an attacker can tune against. */
function toInvalidToken(error: unknown): Refusal {
  if (error instanceof Refusal) return error;
  if (!(error instanceof errors.JOSEError)) return issuerUnavailable();
  switch (error.code) {
    case 'ERR_JWT_EXPIRED':
      return new Refusal('invalid_token', 'The access token expired', { tokenFailure: 'expired' });
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return claimRefusal((error as errors.JWTClaimValidationFailed).claim);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new Refusal('invalid_token', 'The access token algorithm is not allowed', { tokenFailure: 'algorithm' });
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new Refusal('invalid_token', 'The access token signature is invalid', { tokenFailure: 'signature' });
    case 'ERR_JOSE_GENERIC':
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      // The key set could not be fetched or read: not the client's fault, and no reason to let it in.
      return issuerUnavailable();
    default:
      return new Refusal('invalid_token', 'The access token is invalid', { tokenFailure: 'invalid' });
  }
}

function claimRefusal(claim: string): Refusal {
  switch (claim) {
    case 'aud':
      return new Refusal('invalid_token', 'The access token is not for this resource', { tokenFailure: 'audience' });
    case 'iss':
      return new Refusal('invalid_token', 'The access token issuer is not trusted', { tokenFailure: 'issuer' });
    case 'nbf':
      return new Refusal('invalid_token', 'The access token is not yet valid', { tokenFailure: 'not-yet-valid' });
    case 'typ':
      return new Refusal('invalid_token', 'The access token is not an RFC 9068 at+jwt', { tokenFailure: 'type' });
    default:
      return new Refusal('invalid_token', `The access token claim '${claim}' is invalid`, { tokenFailure: 'claims' });
  }
}


