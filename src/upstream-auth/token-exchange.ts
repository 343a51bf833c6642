import { importPKCS8, type CryptoKey } from 'jose';
import { extractCredentials } from '../auth/bearer.js';
import { MAX_IDP_ANSWER_BYTES, readBoundedJson } from '../auth/bounded-body.js';
import { discoveredEndpoint } from '../auth/discovery.js';
import type { Principal } from '../auth/principal.js';
import { BoundedMap } from '../cache/bounded-map.js';
import type { TokenExchangeUpstreamAuth } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import type { KeyValueStore } from '../store/types.js';
import { CredentialCache } from './cache.js';
import type { CredentialSource } from './modes.js';
import { credentialUnavailable, exchangedCredentialRefused, exchangeRefused } from './refusals.js';
import { authenticateClient, grantParameters, readTokenAnswer, type TokenAnswer } from './token-request.js';

/** Beyond this many principals waiting on the IdP at once, more get 503 rather than pile onto it. */
const MAX_CONCURRENT_EXCHANGES = 64;
/** After the IdP failed, exchanges wait this long before it is asked again (and Retry-After says so). */
const COOLDOWN_MS = 2_000;
/** A token the IdP refused is not sent again for this long: a client retrying it costs the IdP nothing. */
const REFUSED_TTL_MS = 10_000;
/** A credential is given up this long before it expires (at most a tenth of its life), so none expires in flight. */
const MARGIN_MS = 30_000;

export interface TokenExchangeDeps {
  readonly routeName: string;
  /** Where exchanged credentials are shared (with the section's cacheKey); the memory store needs none. */
  readonly store: KeyValueStore | undefined;
  readonly logger: Logger;
  /** Longest wait for the IdP (its metadata, the exchange): timeouts.issuerDiscovery. */
  readonly timeoutMs: number;
}

/**
 * routes[].upstreamAuth.tokenExchange: the client's verified token is exchanged at its IdP for a
 * token meant for the upstream (RFC 8693 §2; Entra's on-behalf-of flow), sent as
 * `Authorization: Bearer` (RFC 6750 §2.1). Exchanged credentials are cached per principal
 * (issuer, subject, client) until shortly before they expire, in this process and encrypted in
 * the store; concurrent requests of one principal share one exchange. The IdP refusing the
 * token is the client's to fix (401, a fresh challenge); anything else is the IdP's or the
 * configuration's (503, logged), and nothing is forwarded without a credential.
 */
export class TokenExchangeCredential implements CredentialSource {
  readonly mode = 'tokenExchange' as const;
  readonly header = 'authorization';
  private readonly cache: CredentialCache;
  private readonly inflight = new Map<string, Promise<string>>();
  /** A verified token's principal is one object on every request: its key is made once. */
  private readonly keys = new WeakMap<Principal, string>();
  private readonly refusedTokens = new BoundedMap<string, true>({ maxEntries: 10_000, maxWeight: 16 * 1024 * 1024, weigh: (token) => token.length });
  private unavailableUntilMs = 0;
  /** The configured endpoint, or the issuer metadata's token_endpoint (RFC 8414 §2), found once. */
  private readonly endpointUrl: () => Promise<string>;
  private signingKey: Promise<CryptoKey> | undefined;
  private readonly logger: Logger;

  constructor(
    private readonly config: TokenExchangeUpstreamAuth,
    private readonly deps: TokenExchangeDeps,
  ) {
    this.logger = deps.logger.child({ route: deps.routeName, upstreamAuth: 'tokenExchange', issuer: config.issuer });
    const configured = config.tokenEndpoint;
    this.endpointUrl = configured !== undefined ? () => Promise.resolve(configured) : discoveredEndpoint(config.issuer, 'token_endpoint', deps.timeoutMs);
    // The store tells this route's exchange apart from others by what decides the token's
    // content, never by a secret: rotating the client secret keeps the shared cache.
    const namespace = JSON.stringify([deps.routeName, config.preset, config.issuer, config.tokenEndpoint, config.clientId, config.audience, config.resource, config.scopes]);
    this.cache = new CredentialCache(namespace, config.cacheKey === undefined ? undefined : deps.store, config.cacheKey, this.logger);
  }

  current(principal: Principal, authorization: string | undefined): string | Promise<string> {
    const key = this.keyOf(principal);
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached.header;
    const pending = this.inflight.get(key);
    if (pending !== undefined) return pending;
    // A client's token goes only to the IdP that issued it.
    if (principal.issuer !== this.config.issuer) throw exchangeRefused();
    const waitMs = this.unavailableUntilMs - Date.now();
    if (waitMs > 0) throw credentialUnavailable(Math.ceil(waitMs / 1000));
    if (this.inflight.size >= MAX_CONCURRENT_EXCHANGES) throw credentialUnavailable(1);
    const obtaining = this.obtain(key, authorization).finally(() => this.inflight.delete(key));
    this.inflight.set(key, obtaining);
    return obtaining;
  }

  forget(principal: Principal, value: string): Promise<void> {
    return this.cache.forget(this.keyOf(principal), value);
  }

  refusedAgain() {
    return exchangedCredentialRefused();
  }

  close(): void {}

  private keyOf(principal: Principal): string {
    let key = this.keys.get(principal);
    if (key === undefined) this.keys.set(principal, (key = JSON.stringify([principal.issuer, principal.subject, principal.clientId ?? null])));
    return key;
  }

  private async obtain(key: string, authorization: string | undefined): Promise<string> {
    const shared = await this.cache.shared(key);
    if (shared !== undefined) return shared.header;
    const subjectToken = extractCredentials(authorization).token;
    if (this.refusedTokens.get(subjectToken)) throw exchangeRefused();
    const sentAt = Date.now();
    const answer = await this.request(subjectToken);
    switch (answer.kind) {
      case 'issued': {
        const header = `Bearer ${answer.accessToken}`;
        const lifetimeMs = answer.lifetimeSeconds * 1000;
        // Counted from when the request left: the IdP's clock started no earlier.
        this.cache.put(key, { header, reuseUntilMs: sentAt + lifetimeMs - Math.min(MARGIN_MS, lifetimeMs / 10) });
        return header;
      }
      case 'refused':
        this.logger.warn({ event: 'upstream-credential', error: answer.error }, 'the IdP refused to exchange the token: the client must authenticate again');
        this.refusedTokens.set(subjectToken, true, Date.now() + REFUSED_TTL_MS);
        throw exchangeRefused();
      case 'unavailable':
        this.logger.error({ event: 'upstream-credential', why: answer.why }, 'token exchange failed: requests on this route get 503');
        this.unavailableUntilMs = Date.now() + COOLDOWN_MS;
        throw credentialUnavailable(COOLDOWN_MS / 1000);
    }
  }

  /** One token request; every way it can fail becomes an answer, never an exception. */
  private async request(subjectToken: string): Promise<TokenAnswer> {
    try {
      const endpoint = await this.endpointUrl();
      const form = grantParameters(this.config, subjectToken);
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
      await authenticateClient(form, headers, this.config.clientId, this.config.clientAuth, endpoint, () => this.key());
      // The timeout covers the answer's body too: a trickling IdP cannot hold requests for longer.
      const response = await fetch(endpoint, { method: 'POST', headers, body: form, signal: AbortSignal.timeout(this.deps.timeoutMs), redirect: 'error' });
      const body = await readBoundedJson(response, MAX_IDP_ANSWER_BYTES).catch(() => undefined);
      return readTokenAnswer(response.status, body, Date.now() / 1000);
    } catch (error) {
      const why = (error as Error).name === 'TimeoutError' ? `no answer within ${this.deps.timeoutMs} ms` : (error as Error).message;
      return { kind: 'unavailable', why };
    }
  }

  private key(): Promise<CryptoKey> {
    const auth = this.config.clientAuth;
    if (auth.method !== 'private_key_jwt') return Promise.reject(new Error('no private key configured'));
    return (this.signingKey ??= importPKCS8(auth.privateKey, auth.algorithm));
  }
}
