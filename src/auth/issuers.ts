import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import type { IssuerConfig } from '../config/types.js';
import { Refusal } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { discoverIssuerMetadata, type FetchLike } from './discovery.js';
import type { TrustedIssuer } from './verify-jwt.js';

/** A failed discovery is retried after this long, so a flapping IdP is not hammered. */
const DISCOVERY_RETRY_MS = 5_000;

/** The refusal while an issuer's keys cannot be had: not the client's fault, and no way in. */
export function issuerUnavailable(): Refusal {
  return new Refusal('issuer_unavailable', 'The authorization server keys are unavailable', { retryAfterSeconds: DISCOVERY_RETRY_MS / 1000 });
}

/**
 * The configured issuers and their key sets. Keys are found once through discovery and then
 * cached by jose's remote key set (refetched on an unknown `kid`, with a cooldown).
 * A token naming an issuer that is not configured causes no network request at all.
 */
export class IssuerDirectory {
  private readonly byIssuer = new Map<string, IssuerKeys>();

  constructor(issuers: readonly IssuerConfig[], timeoutMs: number, logger: Logger, fetchFn?: FetchLike) {
    for (const config of issuers) this.byIssuer.set(config.issuer, new IssuerKeys(config, timeoutMs, logger, fetchFn));
  }

  /**
   * The trusted issuer for an (unverified) `iss`: exact match (RFC 9068 §4, the issuer check),
   * and one that the route accepts. Either way, an issuer not trusted here causes no fetch.
   */
  trusted(iss: string, route: string): TrustedIssuer {
    const issuer = this.byIssuer.get(iss);
    if (!issuer || (issuer.config.routes !== undefined && !issuer.config.routes.includes(route))) {
      throw new Refusal('invalid_token', 'The access token issuer is not trusted');
    }
    return issuer;
  }

  /**
   * Discovers every issuer's keys; resolves true when all are ready. Used at startup and by
   * readiness, which retries an issuer not yet ready (no more often than the retry interval).
   */
  async warmUp(): Promise<boolean> {
    const results = await Promise.all([...this.byIssuer.values()].map((issuer) => issuer.ready()));
    return results.every(Boolean);
  }

  /** Per issuer, whether its keys were fetched at least once (they are cached from then on). */
  async readiness(): Promise<Record<string, boolean>> {
    const entries = await Promise.all([...this.byIssuer].map(async ([iss, issuer]) => [iss, await issuer.ready()] as const));
    return Object.fromEntries(entries);
  }
}

class IssuerKeys implements TrustedIssuer {
  readonly keys: JWTVerifyGetKey;
  private jwks: Promise<JWTVerifyGetKey> | undefined;
  private failedAt = 0;

  constructor(
    readonly config: IssuerConfig,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
    private readonly fetchFn?: FetchLike,
  ) {
    this.keys = async (header, token) => (await this.keySet())(header, token);
  }

  async ready(): Promise<boolean> {
    try {
      await this.keySet();
      return true;
    } catch {
      return false;
    }
  }

  private keySet(): Promise<JWTVerifyGetKey> {
    if (!this.jwks) {
      if (Date.now() - this.failedAt < DISCOVERY_RETRY_MS) {
        return Promise.reject(issuerUnavailable());
      }
      this.jwks = this.discover();
    }
    return this.jwks;
  }

  private async discover(): Promise<JWTVerifyGetKey> {
    try {
      const metadata = await discoverIssuerMetadata(this.config.issuer, this.timeoutMs, this.fetchFn);
      const keySet = createRemoteJWKSet(new URL(metadata.jwks_uri), { timeoutDuration: this.timeoutMs });
      // Fetch the keys now, not at the first request: readiness means the keys are in hand.
      await keySet.reload();
      this.logger.info({ issuer: this.config.issuer, jwksUri: metadata.jwks_uri }, 'issuer keys fetched');
      return keySet;
    } catch (error) {
      this.logger.warn({ issuer: this.config.issuer, err: (error as Error).message }, 'issuer discovery failed');
      this.failedAt = Date.now();
      this.jwks = undefined;
      throw issuerUnavailable();
    }
  }
}
