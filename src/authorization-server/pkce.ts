import { createHash } from 'node:crypto';
import { sameSecret } from './secrets.js';

/** RFC 7636 §4.1: 43 to 128 characters of [A-Z a-z 0-9 - . _ ~]. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
/** RFC 7636 §4.2: S256 is BASE64URL(SHA256(verifier)) without padding: 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9\-_]{43}$/;

/**
 * Why an authorization request's PKCE parameters are refused, or undefined. Only S256: OAuth 2.1
 * §4.1.1 and MCP authorization §Authorization Code Protection require it where the client can;
 * `plain` would put the verifier itself in the browser's history.
 */
export function challengeProblem(challenge: string | undefined, method: string | undefined): string | undefined {
  if (challenge === undefined || challenge === '') return 'code_challenge is required (PKCE, RFC 7636)';
  if (method === undefined || method === '') return 'code_challenge_method is required and must be S256';
  if (method !== 'S256') return `code_challenge_method '${method}' is not supported: use S256`;
  if (!S256_CHALLENGE.test(challenge)) return 'code_challenge is not an S256 challenge (43 base64url characters)';
  return undefined;
}

/** RFC 7636 §4.6: the verifier hashes to the challenge stored with the code. */
export function verifierMatches(verifier: string, challenge: string): boolean {
  if (!VERIFIER.test(verifier)) return false;
  return sameSecret(createHash('sha256').update(verifier).digest('base64url'), challenge);
}
