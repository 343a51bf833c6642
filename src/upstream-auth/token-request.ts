import { randomUUID } from 'node:crypto';
import { decodeJwt, SignJWT, type CryptoKey } from 'jose';
import type { TokenEndpointAuth, TokenExchangeUpstreamAuth } from '../config/types.js';
import { addClientSecret } from '../auth/client-secret.js';

/** RFC 8693 §2.1 and §3. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** RFC 7523 §2.1: the grant Entra's on-behalf-of flow uses. */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** RFC 7523 §2.2: client authentication with a signed assertion (private_key_jwt). */
export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * The grant's parameters for the client's token (pure). RFC 8693 §2.1: the subject token is an
 * access token, and an access token is what is wanted, for the configured audience, resource and
 * scope. Entra's on-behalf-of request (Microsoft identity platform, "OAuth 2.0 On-Behalf-Of
 * flow", first case: shared secret or certificate) is the RFC 7523 jwt-bearer grant with the
 * token as `assertion`, `requested_token_use=on_behalf_of`, and the upstream named by `scope`.
 */
export function grantParameters(config: Pick<TokenExchangeUpstreamAuth, 'preset' | 'audience' | 'resource' | 'scopes'>, subjectToken: string): URLSearchParams {
  const form = new URLSearchParams();
  if (config.preset === 'entra-obo') {
    form.set('grant_type', JWT_BEARER_GRANT);
    form.set('assertion', subjectToken);
    form.set('requested_token_use', 'on_behalf_of');
    form.set('scope', config.scopes.join(' '));
    return form;
  }
  form.set('grant_type', TOKEN_EXCHANGE_GRANT);
  form.set('subject_token', subjectToken);
  form.set('subject_token_type', ACCESS_TOKEN_TYPE);
  form.set('requested_token_type', ACCESS_TOKEN_TYPE);
  if (config.audience !== undefined) form.set('audience', config.audience);
  if (config.resource !== undefined) form.set('resource', config.resource);
  if (config.scopes.length > 0) form.set('scope', config.scopes.join(' '));
  return form;
}

/**
 * Adds the gateway's client authentication to a token request: RFC 6749 §2.3.1 (the secret in
 * Basic, its parts form-urlencoded first, or in the body), or RFC 7523 §2.2/§3 (an assertion
 * signed with the gateway's key: iss and sub the client id, aud the token endpoint, short-lived,
 * with a jti so the IdP can refuse a replay).
 */
export async function authenticateClient(form: URLSearchParams, headers: Record<string, string>, clientId: string, auth: TokenEndpointAuth, endpoint: string, signingKey: () => Promise<CryptoKey>): Promise<void> {
  switch (auth.method) {
    case 'client_secret_basic':
    case 'client_secret_post':
      addClientSecret(form, headers, clientId, auth.method, auth.secret);
      return;
    case 'private_key_jwt': {
      const assertion = await new SignJWT({})
        .setProtectedHeader({ alg: auth.algorithm, typ: 'JWT', ...(auth.keyId !== undefined ? { kid: auth.keyId } : {}) })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(endpoint)
        .setJti(randomUUID())
        .setIssuedAt()
        .setExpirationTime('60s')
        .sign(await signingKey());
      form.set('client_id', clientId);
      form.set('client_assertion_type', JWT_BEARER_ASSERTION);
      form.set('client_assertion', assertion);
      return;
    }
  }
}

/** What a token endpoint's answer comes to. */
export type TokenAnswer =
  | { readonly kind: 'issued'; readonly accessToken: string; readonly lifetimeSeconds: number }
  /** The IdP refused the user's token: the client must authenticate again. */
  | { readonly kind: 'refused'; readonly error: string }
  /** Anything else: the IdP failing, or refusing the gateway's own client or request (a config matter). */
  | { readonly kind: 'unavailable'; readonly why: string };

/**
 * Errors about the subject token, not about the gateway: RFC 6749 §5.2 invalid_grant (expired,
 * revoked, not exchangeable), and what Entra's on-behalf-of flow answers when the user must
 * sign in or consent again (interaction_required, consent_required).
 */
const USER_ERRORS = new Set(['invalid_grant', 'interaction_required', 'consent_required', 'login_required']);

/** How long an issued token lives when neither `expires_in` nor a JWT `exp` says: short, to be safe. */
export const DEFAULT_LIFETIME_SECONDS = 60;

/**
 * Reads a token endpoint's answer (pure). RFC 8693 §2.2.1 (and RFC 6749 §5.1): an access_token
 * of token_type Bearer (case-insensitive, RFC 6749 §7.1), with expires_in recommended; without
 * it, the token's own `exp` if it is a JWT. RFC 6749 §5.2 / RFC 8693 §2.2.2: an error object.
 */
export function readTokenAnswer(status: number, body: unknown, nowSeconds: number): TokenAnswer {
  const answer = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  if (status === 200) {
    const token = answer?.access_token;
    if (typeof token !== 'string' || token === '' || !/^[\x21-\x7e]+$/.test(token)) return { kind: 'unavailable', why: 'answer without a usable access_token' };
    if (typeof answer?.token_type !== 'string' || answer.token_type.toLowerCase() !== 'bearer') return { kind: 'unavailable', why: `token_type '${String(answer?.token_type)}' is not Bearer` };
    return { kind: 'issued', accessToken: token, lifetimeSeconds: lifetimeOf(answer.expires_in, token, nowSeconds) };
  }
  const error = typeof answer?.error === 'string' ? answer.error : undefined;
  if ((status === 400 || status === 401) && error !== undefined && USER_ERRORS.has(error)) return { kind: 'refused', error };
  return { kind: 'unavailable', why: `HTTP ${status}${error !== undefined ? ` ${error.slice(0, 64)}` : ''}` };
}

function lifetimeOf(expiresIn: unknown, token: string, nowSeconds: number): number {
  if (typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0) return expiresIn;
  // Some IdPs send expires_in as a string.
  if (typeof expiresIn === 'string' && /^\d+$/.test(expiresIn) && Number(expiresIn) > 0) return Number(expiresIn);
  try {
    const { exp } = decodeJwt(token);
    if (typeof exp === 'number' && exp > nowSeconds) return exp - nowSeconds;
  } catch {
    // Opaque: nothing to read.
  }
  return DEFAULT_LIFETIME_SECONDS;
}
