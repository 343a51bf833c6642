import * as oidc from 'openid-client';
import { RefreshingValue } from '../cache/refreshing-value.js';
import type { UpstreamIdpConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { idpUnavailable, OAuthError } from './errors.js';

/** Discovered metadata is refreshed this often (keys and endpoints move, rarely). */
const METADATA_MAX_AGE_MS = 60 * 60_000;
/** While the IdP cannot be reached, it is asked again at most this often. */
const RETRY_MS = 5_000;

/**
 * The gateway's client configuration at the IdP (openid-client v6): discovered from the issuer
 * (OpenID Connect Discovery 1.0 §4, or RFC 8414 §3), or for plain OAuth 2.0 (GitHub) made from
 * the configured endpoints without any request. The last good discovery is kept through IdP
 * outages; until the first succeeds, every login is `temporarily_unavailable`.
 */
export class IdpConfiguration {
  private readonly discovered: RefreshingValue<oidc.Configuration> | undefined;
  private readonly fixed: oidc.Configuration | undefined;

  constructor(
    private readonly config: UpstreamIdpConfig,
    private readonly timeoutMs: number,
    logger: Logger,
  ) {
    if (config.issuer === undefined) {
      this.fixed = this.plainOAuth();
      return;
    }
    this.discovered = new RefreshingValue({
      load: () => this.discover(config.issuer!),
      maxAgeMs: METADATA_MAX_AGE_MS,
      retryMs: RETRY_MS,
      onFailure: (error, failuresInARow) => {
        if (failuresInARow === 1) logger.warn({ issuer: config.issuer, err: (error as Error).message }, 'upstream IdP metadata unavailable');
      },
    });
  }

  async get(): Promise<oidc.Configuration> {
    if (this.fixed) return this.fixed;
    const found = await this.discovered!.get();
    if (!found) throw idpUnavailable(undefined);
    return found;
  }

  private async discover(issuer: string): Promise<oidc.Configuration> {
    const insecure = new URL(issuer).protocol === 'http:';
    const configuration = await oidc.discovery(new URL(issuer), this.config.clientId, { client_secret: this.config.clientSecret }, undefined, {
      timeout: Math.ceil(this.timeoutMs / 1000),
      // Loopback only (the config refuses plain http elsewhere): a development IdP.
      ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
    });
    // RFC 6749 §2.3.1: Basic is what every server must support; post only where Basic is not offered.
    const methods = configuration.serverMetadata().token_endpoint_auth_methods_supported;
    const auth = methods !== undefined && !methods.includes('client_secret_basic') && methods.includes('client_secret_post')
      ? oidc.ClientSecretPost(this.config.clientSecret)
      : oidc.ClientSecretBasic(this.config.clientSecret);
    const withAuth = new oidc.Configuration(configuration.serverMetadata(), this.config.clientId, { client_secret: this.config.clientSecret }, auth);
    withAuth.timeout = Math.ceil(this.timeoutMs / 1000);
    if (insecure) oidc.allowInsecureRequests(withAuth);
    return withAuth;
  }

  /** GitHub and other plain OAuth 2.0 servers: no discovery; the client secret goes in the body (GitHub reads it there). */
  private plainOAuth(): oidc.Configuration {
    const { authorizationEndpoint, tokenEndpoint, userinfoEndpoint } = this.config;
    const configuration = new oidc.Configuration(
      {
        issuer: new URL(authorizationEndpoint!).origin,
        authorization_endpoint: authorizationEndpoint!,
        token_endpoint: tokenEndpoint!,
        ...(userinfoEndpoint !== undefined ? { userinfo_endpoint: userinfoEndpoint } : {}),
      },
      this.config.clientId,
      { client_secret: this.config.clientSecret },
      oidc.ClientSecretPost(this.config.clientSecret),
    );
    configuration.timeout = Math.ceil(this.timeoutMs / 1000);
    configuration[oidc.customFetch] = errorAnswersAs400;
    if ([authorizationEndpoint, tokenEndpoint].some((url) => new URL(url!).protocol === 'http:')) oidc.allowInsecureRequests(configuration);
    return configuration;
  }
}

/**
 * GitHub answers token errors (a wrong client secret, a spent code) with HTTP 200 and an `error`
 * member, where RFC 6749 §5.2 says 400. Such an answer is given its 400 here, so openid-client
 * reads it as the refusal it is (its error code logged and named), not as a token answer that
 * lacks `access_token`.
 */
async function errorAnswersAs400(url: string, options: oidc.CustomFetchOptions): Promise<Response> {
  const response = await fetch(url, options as RequestInit);
  if (response.status !== 200 || !(response.headers.get('content-type') ?? '').includes('json')) return response;
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const refusal = typeof body === 'object' && body !== null && typeof (body as { error?: unknown }).error === 'string' && !('access_token' in body);
  return new Response(text, { status: refusal ? 400 : 200, headers: response.headers });
}

/**
 * What a failed exchange with the IdP means for the client: unreachable, slow or failing (5xx)
 * is `temporarily_unavailable` (retry later); a refusal or an answer that fails validation
 * (wrong nonce, issuer or audience in the ID token) is `server_error`. The cause is logged by
 * the caller; the description never repeats what the IdP said about its client.
 */
export function idpFailure(error: unknown): OAuthError {
  if (error instanceof OAuthError) return error;
  const code = (error as { code?: string }).code;
  const status = (error as { status?: number }).status ?? ((error as { cause?: { status?: number } }).cause?.status);
  const name = (error as { name?: string }).name;
  const unreachable =
    name === 'TimeoutError' ||
    name === 'AbortError' ||
    (error instanceof TypeError && !(error as { code?: string }).code?.startsWith('ERR_INVALID')) ||
    code === 'OAUTH_TIMEOUT' ||
    code === 'OAUTH_ABORT' ||
    (status !== undefined && status >= 500);
  if (unreachable) return idpUnavailable(error);
  if (error instanceof oidc.ResponseBodyError) {
    return new OAuthError('server_error', `the identity provider refused the login (${error.error})`, { cause: error });
  }
  return new OAuthError('server_error', "the identity provider's answer failed validation", { cause: error });
}
