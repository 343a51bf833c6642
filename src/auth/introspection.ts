import { createHash } from 'node:crypto';
import type { IssuerConfig } from '../config/types.js';
import { Refusal } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { KeyValueStore } from '../store/types.js';
import { audienceIncludes } from './audience.js';
import { confirmationJkt, scopesFromClaims, stringClaim } from './claims.js';
import { fetchIssuerMetadata } from './discovery.js';
import { issuerUnavailable } from './key-set.js';
import type { Principal } from './principal.js';
import { withJkt } from './verify-jwt.js';

export interface IntrospectionConfig {
  /** RFC 7662 endpoint; undefined = the issuer metadata's `introspection_endpoint`. */
  readonly endpoint?: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** RFC 6749 §2.3.1 client authentication for the introspection call. */
  readonly authMethod: 'client_secret_basic' | 'client_secret_post';
  /** Active results are cached until the token's exp, at most this long. */
  readonly cacheTtlMs: number;
  /** Inactive results are cached this long, so a flood of bad tokens costs the IdP little. */
  readonly negativeCacheTtlMs: number;
}

/** An RFC 7662 §2.2 response: `active`, plus whatever claims the IdP adds. */
export type IntrospectionResponse = Readonly<Record<string, unknown>> & { readonly active: boolean };

/**
 * Whether an introspection response admits the token to a route (pure, RFC 7662 §2.2 and
 * RFC 8707): active, from this issuer when it says, unexpired, for this resource (an `aud`
 * is required: a token not bound to this resource is not accepted), not a refresh token, and
 * naming a subject. Scopes, subject and client come from the issuer's claim mapping.
 */
export function principalFromIntrospection(response: IntrospectionResponse, issuer: IssuerConfig, resource: string, nowSeconds: number, fallbackTtlSeconds: number): Principal {
  if (response.active !== true) throw new Refusal('invalid_token', 'The access token is not active');
  if (response.iss !== undefined && response.iss !== issuer.issuer) throw new Refusal('invalid_token', 'The access token issuer is not trusted');
  const tolerance = issuer.clockToleranceSeconds;
  if (typeof response.exp === 'number' && response.exp <= nowSeconds - tolerance) throw new Refusal('invalid_token', 'The access token expired');
  if (typeof response.nbf === 'number' && response.nbf > nowSeconds + tolerance) throw new Refusal('invalid_token', 'The access token is not yet valid');
  const audiences = issuer.audiences ?? [resource];
  if (!audiences.some((audience) => audienceIncludes(response.aud, audience))) throw new Refusal('invalid_token', 'The access token is not for this resource');
  if (response.token_type === 'refresh_token') throw new Refusal('invalid_token', 'A refresh token is not an access token');
  const subject = stringClaim(response, [issuer.claims.subject]);
  if (subject === undefined) throw new Refusal('invalid_token', 'The access token names no subject');
  return {
    issuer: issuer.issuer,
    subject,
    clientId: stringClaim(response, issuer.claims.client),
    scopes: scopesFromClaims(response, issuer.claims),
    expiresAt: typeof response.exp === 'number' ? response.exp : nowSeconds + fallbackTtlSeconds,
    ...withJkt(confirmationJkt(response)),
  };
}

/**
 * Asks the issuer about opaque tokens (RFC 7662), with results cached in the store (shared by
 * replicas): active until the token's exp (capped), inactive briefly. The token itself is never
 * stored or logged, only its SHA-256. Concurrent requests with one token share one call.
 */
export class Introspector {
  private endpoint: Promise<string> | undefined;
  private readonly inflight = new Map<string, Promise<IntrospectionResponse>>();

  constructor(
    readonly issuer: IssuerConfig,
    private readonly config: IntrospectionConfig,
    private readonly store: KeyValueStore,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {}

  /** How long an active result without `exp` counts as valid: the cache TTL. */
  get fallbackTtlSeconds(): number {
    return Math.floor(this.config.cacheTtlMs / 1000);
  }

  async introspect(token: string): Promise<IntrospectionResponse> {
    const key = `introspection:${createHash('sha256').update(token).digest('base64url')}`;
    const cached = await this.store.get(key).catch(() => undefined); // a cache outage only costs a call
    if (cached !== undefined) return JSON.parse(cached) as IntrospectionResponse;
    let call = this.inflight.get(key);
    if (!call) {
      call = this.call(token, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, call);
    }
    return call;
  }

  private async call(token: string, key: string): Promise<IntrospectionResponse> {
    const response = await this.post(token);
    const ttlMs = response.active
      ? Math.min(this.config.cacheTtlMs, typeof response.exp === 'number' ? response.exp * 1000 - Date.now() : Infinity)
      : this.config.negativeCacheTtlMs;
    if (ttlMs > 0) await this.store.set(key, JSON.stringify(response), ttlMs).catch(() => undefined);
    return response;
  }

  private async post(token: string): Promise<IntrospectionResponse> {
    const { clientId, clientSecret, authMethod } = this.config;
    const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (authMethod === 'client_secret_basic') {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
      const credentials = `${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
    } else {
      form.set('client_id', clientId);
      form.set('client_secret', clientSecret);
    }
    let response: Response;
    try {
      response = await fetch(await this.endpointUrl(), { method: 'POST', headers, body: form, signal: AbortSignal.timeout(this.timeoutMs), redirect: 'error' });
    } catch (error) {
      this.logger.warn({ issuer: this.issuer.issuer, err: (error as Error).message }, 'introspection failed');
      throw issuerUnavailable();
    }
    const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (!response.ok || body === undefined || typeof body.active !== 'boolean') {
      this.logger.warn({ issuer: this.issuer.issuer, status: response.status }, 'introspection endpoint answered without an RFC 7662 response');
      throw issuerUnavailable();
    }
    return body as IntrospectionResponse;
  }

  private endpointUrl(): Promise<string> {
    if (this.config.endpoint) return Promise.resolve(this.config.endpoint);
    this.endpoint ??= fetchIssuerMetadata(this.issuer.issuer, this.timeoutMs).then(({ url, document }) => {
      if (typeof document.introspection_endpoint !== 'string') throw new Error(`metadata at ${url.href} has no introspection_endpoint`);
      return document.introspection_endpoint;
    });
    return this.endpoint.catch((error: Error) => {
      this.endpoint = undefined;
      throw error;
    });
  }
}
