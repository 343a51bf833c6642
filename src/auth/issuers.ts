import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import type { IssuerConfig } from '../config/types.js';
import { Refusal } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { discoverIssuerMetadata, type FetchLike } from './discovery.js';
import { fetchJwks, IssuerKeySet, KEY_RETRY_MS } from './key-set.js';
import type { TrustedIssuer } from './verify-jwt.js';

export { issuerUnavailable } from './key-set.js';

/** Least time between refetches for an unknown `kid`: forged kids cannot make a fetch storm. */
const JWKS_COOLDOWN_MS = 30_000;
/** Cached keys are refreshed in the background once this old, so removed keys stop working. */
const JWKS_MAX_AGE_MS = 10 * 60_000;

/**
 * The configured issuers and their key sets (src/auth/key-set.ts: cached, last-known-good kept
 * through IdP outages, refetched on an unknown `kid` with a cooldown). Keys come inline (never
 * fetched), from a configured jwksUri (no discovery), or from the jwks_uri found by discovery.
 * A token naming an issuer that is not configured causes no network request at all.
 */
export class IssuerDirectory {
  private readonly byIssuer = new Map<string, IssuerKeys>();

  constructor(issuers: readonly IssuerConfig[], timeoutMs: number, logger: Logger, fetchFn?: FetchLike, onJwksFetch?: JwksFetchListener) {
    for (const config of issuers) this.byIssuer.set(config.issuer, new IssuerKeys(config, timeoutMs, logger, fetchFn, onJwksFetch));
  }

  /**
   * The trusted issuer for an (unverified) `iss`: exact match (RFC 9068 §4, the issuer check),
   * and one that the route accepts. Either way, an issuer not trusted here causes no fetch.
   */
  trusted(iss: string, route: string): TrustedIssuer {
    const issuer = this.byIssuer.get(iss);
    if (!issuer || (issuer.config.routes !== undefined && !issuer.config.routes.includes(route))) {
      throw new Refusal('invalid_token', 'The access token issuer is not trusted', { tokenFailure: 'issuer' });
    }
    return issuer;
  }

  /**
   * Fetches every issuer's keys; resolves true when all are ready. Used at startup and by
   * readiness, which retries an issuer not yet ready (no more often than the retry interval).
   */
  async warmUp(): Promise<boolean> {
    const results = await Promise.all([...this.byIssuer.values()].map((issuer) => issuer.ready().then((ready) => ready || issuer.introspects)));
    return results.every(Boolean);
  }

  /** Per issuer, whether its keys are in hand (once fetched, they are kept through outages). */
  async readiness(): Promise<Record<string, boolean>> {
    // An issuer that introspects can admit opaque tokens without keys: keys are not required of it.
    const entries = await Promise.all([...this.byIssuer].map(async ([iss, issuer]) => [iss, (await issuer.ready()) || issuer.introspects] as const));
    return Object.fromEntries(entries);
  }
}

/** Told of every JWKS fetch attempt (metrics). */
export type JwksFetchListener = (issuer: string, ok: boolean) => void;

class IssuerKeys implements TrustedIssuer {
  readonly keys: JWTVerifyGetKey;
  readonly introspects: boolean;
  private readonly keySet: IssuerKeySet;
  /** The jwks_uri found by discovery, kept until a fetch from it fails. */
  private discovered: URL | undefined;
  private readonly logger: Logger;

  constructor(
    readonly config: IssuerConfig,
    private readonly timeoutMs: number,
    logger: Logger,
    private readonly fetchFn?: FetchLike,
    private readonly onJwksFetch?: JwksFetchListener,
  ) {
    this.logger = logger.child({ issuer: config.issuer });
    this.introspects = config.introspection !== undefined;
    const source = config.jwks ? { inline: config.jwks } : { fetchJwks: () => this.fetchKeys() };
    this.keySet = new IssuerKeySet(source, {
      cooldownMs: JWKS_COOLDOWN_MS,
      maxAgeMs: JWKS_MAX_AGE_MS,
      // A failed discovery or fetch is retried after this long, so a flapping IdP is not hammered.
      retryMs: KEY_RETRY_MS,
      logger: this.logger,
    });
    this.keys = this.keySet.getKey;
  }

  ready(): Promise<boolean> {
    return this.keySet.ready();
  }

  /** The configured jwksUri as is; otherwise discovery (RFC 8414 §3, OIDC Discovery §4) first. */
  private async fetchKeys(): Promise<JSONWebKeySet> {
    const configured = this.config.jwksUri;
    let url: URL;
    try {
      url = configured ? new URL(configured) : (this.discovered ??= await this.discover());
    } catch (error) {
      this.onJwksFetch?.(this.config.issuer, false);
      throw error;
    }
    try {
      const keys = await fetchJwks(url, this.timeoutMs, this.fetchFn);
      this.onJwksFetch?.(this.config.issuer, true);
      return keys;
    } catch (error) {
      this.onJwksFetch?.(this.config.issuer, false);
      // The IdP may have moved its keys: the next attempt asks its metadata again.
      if (!configured) this.discovered = undefined;
      throw error;
    }
  }

  private async discover(): Promise<URL> {
    const metadata = await discoverIssuerMetadata(this.config.issuer, this.timeoutMs, this.fetchFn);
    this.logger.debug({ jwksUri: metadata.jwks_uri }, 'issuer metadata discovered');
    return new URL(metadata.jwks_uri);
  }
}
