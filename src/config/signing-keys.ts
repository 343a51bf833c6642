import { importJWK, type JWK } from 'jose';

/** The algorithm each signing key is used with: one per key type, none chosen by a token. */
export function signingAlgorithm(jwk: JWK): 'ES256' | 'RS256' | 'PS256' {
  if (jwk.kty === 'EC') return 'ES256';
  return jwk.alg === 'PS256' ? 'PS256' : 'RS256';
}

/**
 * The authorization server's private signing keys (authorizationServer.signingKeys.file), a JWKS
 * whose first key signs and whose every key is published, so rotation is "put the new key first,
 * keep the old one until its tokens have expired". Each key is EC P-256 (ES256) or RSA of at least
 * 2048 bits (RS256, or PS256 when its `alg` says so; RFC 7518 §3.3), private, with a unique
 * `kid` (RFC 9068 §4: resource servers pick the key by it). Every problem is reported; the keys
 * are returned only when all are usable.
 */
export async function checkSigningKeys(text: string, report: (message: string) => void): Promise<JWK[] | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    report(`signingKeys.file is not JSON: ${(error as Error).message}`);
    return undefined;
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    report('signingKeys.file must be a JWKS, {"keys": [...]}, with at least one private key');
    return undefined;
  }
  const problems: string[] = [];
  const kids = new Set<string>();
  for (const [index, key] of keys.entries()) {
    const why = await keyProblem(key as JWK, kids);
    if (why) problems.push(`key ${index} ${why}`);
  }
  if (problems.length > 0) {
    report(`signingKeys.file: ${problems.join('; ')}`);
    return undefined;
  }
  return keys as JWK[];
}

async function keyProblem(key: JWK, kids: Set<string>): Promise<string | undefined> {
  if (typeof key !== 'object' || key === null) return 'is not a JWK';
  if (typeof key.kid !== 'string' || key.kid === '') return 'has no kid';
  if (kids.has(key.kid)) return `repeats the kid '${key.kid}'`;
  kids.add(key.kid);
  if (key.kty === 'EC') {
    if (key.crv !== 'P-256') return `is EC on ${String(key.crv)}: only P-256 (ES256) is used`;
    if (key.alg !== undefined && key.alg !== 'ES256') return `says alg ${key.alg}: an EC P-256 key signs ES256`;
  } else if (key.kty === 'RSA') {
    const bits = typeof key.n === 'string' ? Buffer.from(key.n, 'base64url').length * 8 : 0;
    if (bits < 2048) return `is RSA of ${bits} bits: at least 2048 are needed`;
    if (key.alg !== undefined && key.alg !== 'RS256' && key.alg !== 'PS256') return `says alg ${key.alg}: an RSA key signs RS256 or PS256`;
  } else {
    return `has kty ${String(key.kty)}: only EC (P-256) and RSA keys sign`;
  }
  if (typeof key.d !== 'string') return 'is a public key: the authorization server needs the private key to sign';
  try {
    await importJWK(key, signingAlgorithm(key));
  } catch (error) {
    return `cannot be used: ${(error as Error).message}`;
  }
  return undefined;
}
