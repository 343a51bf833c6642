import * as oidc from 'openid-client';
import type { UpstreamIdpConfig } from '../config/types.js';
import { UPSTREAM_PRESET_DEFAULTS } from '../config/upstream-presets.js';
import type { Logger } from '../observability/logger.js';
import { OAuthError } from './errors.js';
import { idpFailure, IdpConfiguration } from './idp-configuration.js';
import type { IdpTokenSet } from './idp-tokens.js';
import type { TokenOutcome } from './token-sets.js';

/** Who logged in at the IdP, with what it said about them and the tokens it gave the gateway. */
export interface IdpLogin {
  /** The IdP's subject: the subjectClaim's value (GitHub's numeric id as a string). */
  readonly subject: string;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly tokens: IdpTokenSet;
}

/** What the gateway's own request to the IdP must be checked against when the user returns. */
export interface IdpRequestChecks {
  readonly state: string;
  readonly codeVerifier: string;
  readonly nonce?: string;
}

/** Bounds on a user API answer the gateway reads (plain OAuth 2.0). */
const USERINFO_MAX_BYTES = 64 * 1024;

/**
 * The IdP as an OAuth client sees it (openid-client v6): the authorization request with PKCE
 * S256, `state` and (OpenID Connect) `nonce` (RFC 9700 §2.1.1, OIDC Core §3.1.2.1), the code
 * exchange with the ID token checked by openid-client (issuer, audience, nonce, expiry: OIDC Core
 * §3.1.3.7), then the user's claims from userinfo, or for plain OAuth 2.0 (GitHub) its user API.
 */
export class UpstreamIdp {
  private readonly configuration: IdpConfiguration;
  /** OpenID Connect (an ID token and a nonce) when `openid` is asked for; plain OAuth 2.0 otherwise. */
  readonly openId: boolean;

  constructor(
    readonly config: UpstreamIdpConfig,
    /** The gateway's callback URL, registered at the IdP. */
    private readonly callbackUrl: string,
    timeoutMs: number,
    logger: Logger,
  ) {
    this.configuration = new IdpConfiguration(config, timeoutMs, logger);
    this.openId = config.issuer !== undefined && config.scopes.includes('openid');
  }

  get namespace(): string {
    return UPSTREAM_PRESET_DEFAULTS[this.config.preset].namespace;
  }

  /** Where to send the browser. Throws temporarily_unavailable while the IdP's metadata cannot be had. */
  async authorizationUrl(checks: IdpRequestChecks): Promise<URL> {
    const configuration = await this.configuration.get();
    const preset = UPSTREAM_PRESET_DEFAULTS[this.config.preset];
    return oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: this.callbackUrl,
      scope: this.config.scopes.join(' '),
      state: checks.state,
      code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
      ...(checks.nonce !== undefined ? { nonce: checks.nonce } : {}),
      ...preset.authorizationParameters,
      ...(this.config.audience !== undefined ? { audience: this.config.audience } : {}),
    });
  }

  /** Exchanges the code the IdP sent back (`query` of the callback) and reads the user. */
  async finish(query: URLSearchParams, checks: IdpRequestChecks): Promise<IdpLogin> {
    try {
      const configuration = await this.configuration.get();
      const current = new URL(this.callbackUrl);
      for (const [key, value] of query) current.searchParams.append(key, value);
      const tokens = await oidc.authorizationCodeGrant(configuration, current, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        ...(checks.nonce !== undefined ? { expectedNonce: checks.nonce } : {}),
        idTokenExpected: this.openId,
      });
      const claims = await this.userClaims(configuration, tokens);
      const raw = claims[this.config.subjectClaim];
      if ((typeof raw !== 'string' || raw === '') && typeof raw !== 'number') {
        throw new OAuthError('server_error', `the identity provider did not name the user (no '${this.config.subjectClaim}' claim)`);
      }
      return {
        subject: String(raw),
        claims,
        tokens: {
          accessToken: tokens.access_token,
          ...(tokens.refresh_token !== undefined ? { refreshToken: tokens.refresh_token } : {}),
          ...(tokens.id_token !== undefined ? { idToken: tokens.id_token } : {}),
          ...lifetimeOf(tokens.expires_in),
          ...(tokens.scope !== undefined ? { scope: tokens.scope } : {}),
        },
      };
    } catch (error) {
      throw idpFailure(error);
    }
  }

  /**
   * RFC 6749 §6: a fresh access token for a user's refresh token (upstreamAuth.idpToken). A new
   * refresh token replaces the old one when the IdP rotates it; an ID token that comes along is
   * checked by openid-client and kept. The IdP refusing the grant (invalid_grant: expired,
   * revoked, the user gone) is the user's to fix by logging in again; anything else is the IdP's.
   */
  async refresh(refreshToken: string): Promise<TokenOutcome> {
    try {
      const configuration = await this.configuration.get();
      const tokens = await oidc.refreshTokenGrant(configuration, refreshToken);
      if (!/^[\x21-\x7e]+$/.test(tokens.access_token)) return { kind: 'unavailable', why: 'the IdP answered with an access token a header cannot carry' };
      return {
        kind: 'issued',
        tokens: {
          accessToken: tokens.access_token,
          refreshToken: tokens.refresh_token ?? refreshToken,
          ...(tokens.id_token !== undefined ? { idToken: tokens.id_token } : {}),
          ...lifetimeOf(tokens.expires_in),
          ...(tokens.scope !== undefined ? { scope: tokens.scope } : {}),
        },
      };
    } catch (error) {
      const refused = grantError(error);
      if (refused !== undefined && REFUSED_GRANT.has(refused)) return { kind: 'refused', error: refused };
      const failure = idpFailure(error);
      return { kind: 'unavailable', why: refused !== undefined ? `the IdP refused the refresh: ${refused}` : failure.description };
    }
  }

  /** ID token claims over userinfo's (the ID token is what the IdP signed for this login). */
  private async userClaims(configuration: oidc.Configuration, tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): Promise<Record<string, unknown>> {
    const idClaims = tokens.claims() as Record<string, unknown> | undefined;
    const endpoint = configuration.serverMetadata().userinfo_endpoint;
    if (endpoint === undefined) return { ...idClaims };
    if (!this.openId) return this.userApi(endpoint, tokens.access_token);
    // OIDC Core §5.3.2: userinfo's sub must be the ID token's.
    const info = await oidc.fetchUserInfo(configuration, tokens.access_token, (idClaims?.sub as string | undefined) ?? oidc.skipSubjectCheck);
    return { ...info, ...idClaims };
  }

  /** A plain OAuth 2.0 user API (GitHub's `GET /user`): JSON about the token's owner. */
  private async userApi(endpoint: string, accessToken: string): Promise<Record<string, unknown>> {
    const response = await fetch(endpoint, {
      headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json', 'user-agent': 'mcp-auth-gateway' },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (response.status >= 500) throw Object.assign(new Error(`user API answered ${response.status}`), { status: response.status });
    if (!response.ok || text.length > USERINFO_MAX_BYTES) throw new OAuthError('server_error', `the identity provider's user API answered HTTP ${response.status}`);
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new OAuthError('server_error', "the identity provider's user API did not answer with a JSON object");
    return parsed as Record<string, unknown>;
  }
}

/** The IdP's answers that mean the refresh token is no good (RFC 6749 §5.2; Entra's interaction_required). */
const REFUSED_GRANT = new Set(['invalid_grant', 'interaction_required', 'consent_required', 'login_required', 'bad_refresh_token']);

/** The RFC 6749 §5.2 `error` of a failed token request: in an error body, or (GitHub) in a 200 body. */
function grantError(error: unknown): string | undefined {
  if (error instanceof oidc.ResponseBodyError) return error.error;
  const body = (error as { cause?: { body?: { error?: unknown } } }).cause?.body;
  return typeof body?.error === 'string' ? body.error : undefined;
}

/** When a token expires, counted from now, and when it was received. */
function lifetimeOf(expiresIn: number | undefined): { expiresAt?: number; issuedAt: number } {
  const now = Math.floor(Date.now() / 1000);
  return { issuedAt: now, ...(expiresIn !== undefined && expiresIn > 0 ? { expiresAt: now + expiresIn } : {}) };
}
