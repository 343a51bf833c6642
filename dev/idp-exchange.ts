/**
 * Token exchange grants for the development IdP (dev/idp.ts), registered on the real
 * oidc-provider with `registerGrantType`, so the gateway's upstream credentials are tested
 * against a real token endpoint (client authentication included: client_secret_basic/post and
 * private_key_jwt are oidc-provider's own):
 *
 * - RFC 8693 token exchange (`urn:ietf:params:oauth:grant-type:token-exchange`): an access token
 *   this IdP issued (`subject_token`) is traded for a JWT for `audience` (or `resource`), with the
 *   same subject.
 * - The RFC 7523 jwt-bearer grant in the shape of Microsoft Entra's on-behalf-of flow:
 *   `assertion` (the token), `requested_token_use=on_behalf_of`, `scope` (`<app id URI>/.default`,
 *   whose app id URI becomes the audience).
 *
 * Tests see every call (`DevExchangeControl.calls`) and can make the grants refuse
 * (`invalid_grant`), fail (`503`) or hang, as a real IdP might.
 */
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** A client (the gateway) allowed to exchange tokens: with a secret, or with public keys for private_key_jwt. */
export interface DevExchangeClient {
  readonly clientId: string;
  readonly clientSecret?: string;
  /** Default client_secret_basic; ignored with `jwks`. */
  readonly authMethod?: 'client_secret_basic' | 'client_secret_post';
  /** Public keys of the client's private_key_jwt assertions (RFC 7523 §2.2). */
  readonly jwks?: { readonly keys: readonly JWK[] };
}

export interface DevExchangeOptions {
  readonly clients: readonly DevExchangeClient[];
  /** Lifetime of the tokens issued (expires_in). Default 300. */
  readonly tokenTtlSeconds?: number;
}

/** One exchange the IdP was asked for. */
export interface DevExchangeCall {
  readonly grantType: string;
  readonly clientId: string;
  readonly subject: string | undefined;
  readonly audience: string | undefined;
  readonly scope: string | undefined;
  readonly outcome: 'issued' | 'refused' | 'unavailable';
  /** The token issued, for tests that check what the upstream received. */
  readonly accessToken?: string;
}

/** How the grants behave now, and what they were asked. */
export interface DevExchangeControl {
  /** none: as a working IdP; invalid_grant: every exchange refused; unavailable: 503; hang: no answer. */
  fault: 'none' | 'invalid_grant' | 'unavailable' | 'hang';
  /** Each answer waits this long first (so that tests can have requests overlap an exchange). */
  delayMs: number;
  readonly calls: DevExchangeCall[];
}

/** The static client registrations oidc-provider needs for these clients. */
export function exchangeClientMetadata(clients: readonly DevExchangeClient[]): Record<string, unknown>[] {
  return clients.map((client) => ({
    client_id: client.clientId,
    ...(client.clientSecret !== undefined ? { client_secret: client.clientSecret } : {}),
    ...(client.jwks ? { jwks: client.jwks } : {}),
    token_endpoint_auth_method: client.jwks ? 'private_key_jwt' : (client.authMethod ?? 'client_secret_basic'),
    grant_types: [TOKEN_EXCHANGE_GRANT, JWT_BEARER_GRANT],
    redirect_uris: [],
    response_types: [],
  }));
}

interface GrantContext {
  status: number;
  body: unknown;
  oidc: { params: Record<string, unknown>; client: { clientId: string } };
}

interface GrantRegistry {
  registerGrantType(name: string, handler: (ctx: GrantContext) => Promise<void>, params: string[], dupes?: string[]): void;
}

interface Issuing {
  readonly issuer: string;
  readonly alg: 'RS256' | 'ES256';
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/** Registers both grants on the provider; returns the control tests use. */
export function registerExchangeGrants(provider: unknown, options: DevExchangeOptions, issuing: Issuing): DevExchangeControl {
  const control: DevExchangeControl = { fault: 'none', delayMs: 0, calls: [] };
  const ttl = options.tokenTtlSeconds ?? 300;
  const ownKeys = createLocalJWKSet({ keys: [issuing.publicJwk] });

  /** The presented token, verified as one this IdP issued; its subject, or undefined. */
  const subjectOf = async (token: unknown): Promise<string | undefined> => {
    if (typeof token !== 'string') return undefined;
    try {
      const { payload } = await jwtVerify(token, ownKeys, { issuer: issuing.issuer, algorithms: [issuing.alg] });
      return typeof payload.sub === 'string' ? payload.sub : undefined;
    } catch {
      return undefined;
    }
  };

  const answer = async (ctx: GrantContext, grantType: string, presented: unknown, audience: string | undefined, scope: string | undefined): Promise<void> => {
    const clientId = ctx.oidc.client.clientId;
    const subject = await subjectOf(presented);
    const record = (outcome: DevExchangeCall['outcome'], accessToken?: string) =>
      control.calls.push({ grantType, clientId, subject, audience, scope, outcome, ...(accessToken ? { accessToken } : {}) });
    if (control.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, control.delayMs));
    if (control.fault === 'hang') await new Promise((resolve) => setTimeout(resolve, 30_000).unref());
    if (control.fault === 'unavailable') {
      record('unavailable');
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable', error_description: 'the IdP is down (test fault)' };
      return;
    }
    if (control.fault === 'invalid_grant' || subject === undefined || audience === undefined) {
      record('refused');
      ctx.status = 400;
      ctx.body = { error: 'invalid_grant', error_description: subject === undefined ? 'the presented token is not valid here' : 'refused (test fault)' };
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const accessToken = await new SignJWT({ client_id: clientId, ...(scope ? { scope } : {}) })
      .setProtectedHeader({ alg: issuing.alg, kid: issuing.kid, typ: 'at+jwt' })
      .setIssuer(issuing.issuer)
      .setSubject(subject)
      .setAudience(audience)
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .setJti(randomBytes(12).toString('base64url'))
      .sign(issuing.privateKey);
    record('issued', accessToken);
    ctx.body = { access_token: accessToken, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: ttl, ...(scope ? { scope } : {}) };
  };

  const registry = provider as GrantRegistry;
  // RFC 8693 §2.1: audience and resource may each be given more than once; the first is used here.
  registry.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    async (ctx) => {
      const { subject_token, subject_token_type, audience, resource, scope } = ctx.oidc.params;
      if (subject_token_type !== ACCESS_TOKEN_TYPE) {
        ctx.status = 400;
        ctx.body = { error: 'invalid_request', error_description: 'subject_token_type must be an access token' };
        return;
      }
      await answer(ctx, TOKEN_EXCHANGE_GRANT, subject_token, firstString(audience) ?? firstString(resource), typeof scope === 'string' ? scope : undefined);
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope', 'actor_token', 'actor_token_type'],
    ['audience', 'resource'],
  );
  // Entra: the audience is the application the `.default` scope names.
  registry.registerGrantType(
    JWT_BEARER_GRANT,
    async (ctx) => {
      const { assertion, requested_token_use, scope } = ctx.oidc.params;
      if (requested_token_use !== 'on_behalf_of' || typeof scope !== 'string' || scope === '') {
        ctx.status = 400;
        ctx.body = { error: 'invalid_request', error_description: 'requested_token_use=on_behalf_of and scope are required' };
        return;
      }
      const first = scope.split(' ')[0]!;
      await answer(ctx, JWT_BEARER_GRANT, assertion, first.endsWith('/.default') ? first.slice(0, -'/.default'.length) : first.slice(0, first.lastIndexOf('/')), scope);
    },
    ['assertion', 'requested_token_use', 'scope'],
  );
  return control;
}

function firstString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  return Array.isArray(value) && typeof value[0] === 'string' ? value[0] : undefined;
}
