import { createHash } from 'node:crypto';
import { BoundedMap } from '../cache/bounded-map.js';
import type { IntrospectionConfig, IssuerConfig } from '../config/types.js';
import { Refusal } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { KeyValueStore } from '../store/types.js';
import { MAX_IDP_ANSWER_BYTES, readBoundedJson } from './bounded-body.js';
import { discoveredEndpoint } from './discovery.js';
import { issuerUnavailable } from './key-set.js';
import { principalFromClaims, type Principal } from './principal.js';
import { addClientSecret } from './client-secret.js';

export type { IntrospectionConfig };

/** Longer strings are not tokens any IdP issues; they are refused without asking. */
const MAX_OPAQUE_TOKEN_LENGTH = 4096;
/** Beyond this many distinct tokens in flight, new ones get 503 rather than piling onto the IdP. */
const MAX_CONCURRENT_INTROSPECTIONS = 64;
const INACTIVE: IntrospectionResponse = Object.freeze({ active: false });

/** An RFC 7662 §2.2 response: `active`, plus whatever claims the IdP adds. */
export type IntrospectionResponse = Readonly<Record<string, unknown>> & { readonly active: boolean };

/**
 * Whether an introspection response admits the token to a route (pure, RFC 7662 §2.2 and
 * RFC 8707): active, from this issuer when it says, unexpired, for this resource (an `aud`
 * is required: a token not bound to this resource is not accepted), not a refresh token, and
 * naming a subject. Scopes, subject and client come from the issuer's claim mapping.
 */
export function principalFromIntrospection(response: IntrospectionResponse, issuer: IssuerConfig, resource: string, nowSeconds: number, fallbackTtlSeconds: number): Principal {
  if (response.active !== true) throw new Refusal('invalid_token', 'The access token is not active', { tokenFailure: 'inactive' });
  if (response.iss !== undefined && response.iss !== issuer.issuer) throw new Refusal('invalid_token', 'The access token issuer is not trusted', { tokenFailure: 'issuer' });
  const tolerance = issuer.clockToleranceSeconds;
  if (typeof response.exp === 'number' && response.exp <= nowSeconds - tolerance) throw new Refusal('invalid_token', 'The access token expired', { tokenFailure: 'expired' });
  if (typeof response.nbf === 'number' && response.nbf > nowSeconds + tolerance) throw new Refusal('invalid_token', 'The access token is not yet valid', { tokenFailure: 'not-yet-valid' });
  if (response.token_type === 'refresh_token') throw new Refusal('invalid_token', 'A refresh token is not an access token', { tokenFailure: 'type' });
  return principalFromClaims(response, issuer, resource, typeof response.exp === 'number' ? response.exp : nowSeconds + fallbackTtlSeconds);
}

/**
 * Asks the issuer about opaque tokens (RFC 7662), with results cached in the store (shared by
 * replicas): active until the token's exp (capped), inactive briefly. The token itself is never
 * stored or logged, only its SHA-256. Concurrent requests with one token share one call.
 */
export class Introspector {
  /** The configured endpoint, or the issuer metadata's introspection_endpoint, found once. */
  private readonly endpointUrl: () => Promise<string>;
  private readonly inflight = new Map<string, Promise<IntrospectionResponse>>();
  /** Tokens the IdP called inactive, by key, until the negative cache TTL ends (oldest out first). */
  private readonly inactive = new BoundedMap<string, true>({ maxEntries: 10_000 });

  constructor(
    readonly issuer: IssuerConfig,
    private readonly config: IntrospectionConfig,
    private readonly store: KeyValueStore,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {
    const configured = config.endpoint;
    this.endpointUrl = configured ? () => Promise.resolve(configured) : discoveredEndpoint(issuer.issuer, 'introspection_endpoint', timeoutMs);
  }

  /** How long an active result without `exp` counts as valid: the cache TTL. */
  get fallbackTtlSeconds(): number {
    return Math.floor(this.config.cacheTtlMs / 1000);
  }

  async introspect(token: string): Promise<IntrospectionResponse> {
    // Anyone can send junk before authenticating: it must not reach the IdP unbounded.
    if (token.length > MAX_OPAQUE_TOKEN_LENGTH) return INACTIVE;
    // Per issuer: one IdP's answer must never stand for another's (RFC 7662 answers need not name `iss`).
    const key = `introspection:${createHash('sha256').update(this.issuer.issuer).update('\u0000').update(token).digest('base64url')}`;
    if (this.inactive.get(key)) return INACTIVE;
    const cached = await this.store.get(key).catch(() => undefined); // a cache outage only costs a call
    if (cached !== undefined) return JSON.parse(cached) as IntrospectionResponse;
    let call = this.inflight.get(key);
    if (!call) {
      if (this.inflight.size >= MAX_CONCURRENT_INTROSPECTIONS) throw issuerUnavailable(1);
      call = this.call(token, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, call);
    }
    return call;
  }

  /**
   * Active answers go to the store (replicas share them, and they are few: one per live token).
   * Inactive ones stay in this process, bounded, so a flood of junk tokens cannot fill the store
   * that sessions and rate limits live in.
   */
  private async call(token: string, key: string): Promise<IntrospectionResponse> {
    const response = await this.post(token);
    if (!response.active) {
      this.inactive.set(key, true, Date.now() + this.config.negativeCacheTtlMs);
      return response;
    }
    const ttlMs = Math.min(this.config.cacheTtlMs, typeof response.exp === 'number' ? response.exp * 1000 - Date.now() : Infinity);
    if (ttlMs > 0) await this.store.set(key, JSON.stringify(response), ttlMs).catch(() => undefined);
    return response;
  }

  private async post(token: string): Promise<IntrospectionResponse> {
    const { clientId, clientSecret, authMethod } = this.config;
    const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    addClientSecret(form, headers, clientId, authMethod, clientSecret);
    let response: Response;
    try {
      response = await fetch(await this.endpointUrl(), { method: 'POST', headers, body: form, signal: AbortSignal.timeout(this.timeoutMs), redirect: 'error' });
    } catch (error) {
      this.logger.warn({ issuer: this.issuer.issuer, err: (error as Error).message }, 'introspection failed');
      throw issuerUnavailable();
    }
    const body = (await readBoundedJson(response, MAX_IDP_ANSWER_BYTES).catch(() => undefined)) as Record<string, unknown> | null | undefined;
    if (!response.ok || body === null || typeof body !== 'object' || typeof body.active !== 'boolean') {
      this.logger.warn({ issuer: this.issuer.issuer, status: response.status }, 'introspection endpoint answered without an RFC 7662 response');
      throw issuerUnavailable();
    }
    return body as IntrospectionResponse;
  }
}
