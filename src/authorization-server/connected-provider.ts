import { MAX_IDP_ANSWER_BYTES, readBoundedJson } from '../auth/bounded-body.js';
import type { ConnectedAccountUpstreamAuth } from '../config/types.js';
import type { TokenOutcome } from './token-sets.js';
import { addClientSecret } from '../auth/client-secret.js';

/**
 * The gateway as an OAuth 2.0 client of a connected account's provider (GitHub, Atlassian, any
 * RFC 6749 server): the authorization request with PKCE S256 and `state` (RFC 7636, RFC 9700
 * §2.1.1), the code exchange (§4.1.3) and refreshes (§6), authenticated with the client secret
 * (§2.3.1). Plain fetch rather than an OpenID library: these providers are plain OAuth 2.0, and
 * some answer in their own way (GitHub: form-encoded unless JSON is asked for, errors with
 * HTTP 200), which readProviderAnswer reads.
 */
export class ConnectedProvider {
  constructor(
    readonly config: ConnectedAccountUpstreamAuth,
    /** The gateway's redirect URI, registered at the provider (<issuer>/oauth/connect/callback). */
    private readonly callbackUrl: string,
    private readonly timeoutMs: number,
  ) {}

  authorizationUrl(state: string, codeChallenge: string): URL {
    const url = new URL(this.config.authorizationEndpoint);
    for (const [name, value] of Object.entries(this.config.authorizationParameters)) url.searchParams.set(name, value);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', this.config.clientId);
    url.searchParams.set('redirect_uri', this.callbackUrl);
    if (this.config.scopes.length > 0) url.searchParams.set('scope', this.config.scopes.join(' '));
    url.searchParams.set('state', state);
    url.searchParams.set('code_challenge', codeChallenge);
    url.searchParams.set('code_challenge_method', 'S256');
    return url;
  }

  exchangeCode(code: string, codeVerifier: string): Promise<TokenOutcome> {
    return this.tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: this.callbackUrl, code_verifier: codeVerifier });
  }

  refresh(refreshToken: string): Promise<TokenOutcome> {
    return this.tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken }, refreshToken);
  }

  private async tokenRequest(params: Record<string, string>, refreshToken?: string): Promise<TokenOutcome> {
    const form = new URLSearchParams(params);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'user-agent': 'mcp-auth-gateway' };
    const { clientId, clientAuth } = this.config;
    addClientSecret(form, headers, clientId, clientAuth.method, clientAuth.secret);
    try {
      const response = await fetch(this.config.tokenEndpoint, { method: 'POST', headers, body: form, redirect: 'error', signal: AbortSignal.timeout(this.timeoutMs) });
      const body = await readBoundedJson(response, MAX_IDP_ANSWER_BYTES).catch(() => undefined);
      const outcome = readProviderAnswer(response.status, body, Math.floor(Date.now() / 1000));
      // RFC 6749 §6: a refresh answer may omit the refresh token, which then stays valid.
      if (outcome.kind === 'issued' && refreshToken !== undefined && outcome.tokens.refreshToken === undefined) {
        return { kind: 'issued', tokens: { ...outcome.tokens, refreshToken } };
      }
      return outcome;
    } catch (error) {
      return { kind: 'unavailable', why: (error as Error).name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (error as Error).message };
    }
  }
}

/**
 * Errors meaning the code or refresh token is no good (RFC 6749 §5.2 invalid_grant), or GitHub's
 * spelling of it: the user connects again. Anything else (invalid_client, a 5xx) is the
 * provider's or the configuration's.
 */
const REFUSED = new Set(['invalid_grant', 'bad_verification_code', 'bad_refresh_token', 'access_denied']);

/**
 * A token endpoint's answer (pure): RFC 6749 §5.1 an access token of type Bearer
 * (case-insensitive, §7.1; GitHub writes `bearer`), with `expires_in` (a number, or digits) and a
 * refresh token when the provider issues them; §5.2 an error object, which GitHub sends with
 * HTTP 200. Only a token a header can carry is ever issued.
 */
export function readProviderAnswer(status: number, body: unknown, nowSeconds: number): TokenOutcome {
  const answer = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  const error = typeof answer?.error === 'string' ? answer.error.slice(0, 64) : undefined;
  if (error !== undefined && (status === 200 || status === 400 || status === 401)) {
    return REFUSED.has(error) ? { kind: 'refused', error } : { kind: 'unavailable', why: `the provider answered ${error}` };
  }
  if (status !== 200) return { kind: 'unavailable', why: `HTTP ${status}` };
  const token = answer?.access_token;
  if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) return { kind: 'unavailable', why: 'answer without a usable access_token' };
  if (typeof answer?.token_type !== 'string' || answer.token_type.toLowerCase() !== 'bearer') return { kind: 'unavailable', why: `token_type '${String(answer?.token_type).slice(0, 32)}' is not Bearer` };
  const expiresIn = typeof answer.expires_in === 'number' ? answer.expires_in : typeof answer.expires_in === 'string' && /^\d+$/.test(answer.expires_in) ? Number(answer.expires_in) : undefined;
  const refresh = typeof answer.refresh_token === 'string' && answer.refresh_token !== '' ? answer.refresh_token : undefined;
  return {
    kind: 'issued',
    tokens: {
      accessToken: token,
      ...(refresh !== undefined ? { refreshToken: refresh } : {}),
      issuedAt: nowSeconds,
      ...(expiresIn !== undefined && Number.isFinite(expiresIn) && expiresIn > 0 ? { expiresAt: nowSeconds + expiresIn } : {}),
      ...(typeof answer.scope === 'string' ? { scope: answer.scope.slice(0, 1024) } : {}),
    },
  };
}
