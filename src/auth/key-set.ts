import { base64url, createLocalJWKSet, errors, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';
import { Refusal } from '../errors.js';
import { RefreshingValue } from '../cache/refreshing-value.js';
import { MAX_IDP_ANSWER_BYTES, readBoundedText } from './bounded-body.js';

/**
 * An issuer's signing keys, owned by us rather than by jose's remote key set: jose's set throws
 * once its cache is stale and a refetch fails, which would turn an IdP outage into refused
 * tokens. Here the last-known-good keys are kept until a fetch brings a better set.
 *
 * - A stale set (older than maxAge) is refreshed in the background; requests keep using it.
 * - A `kid` not in the set refetches at most once per cooldown, and concurrent callers share
 *   one in-flight fetch, so a burst of forged kids costs the IdP one request.
 * - Keys are selected by jose's local key set (kid/alg/kty matching, import, public-only check)
 *   over the keys that pass `unusableReason`.
 *
 * Outcomes: no key for the token while we hold keys → jose's JWKSNoMatchingKey (401
 * invalid_token: the signature cannot be checked, and a forger must not be able to turn the
 * IdP's outage into anything but a refusal of their own token). No keys at all yet (never
 * fetched successfully, or inline keys all unusable) → `issuerUnavailable()` (503: not the
 * client's fault, retry later).
 */

/** Least time between fetch attempts while the set is empty or stale and fetching fails. */
export const KEY_RETRY_MS = 5_000;

/** The refusal while an issuer's keys cannot be had: not the client's fault, and no way in. */
export function issuerUnavailable(retryAfterSeconds = KEY_RETRY_MS / 1000): Refusal {
  return new Refusal('issuer_unavailable', 'The authorization server keys are unavailable', { retryAfterSeconds });
}

export interface KeySetSource {
  /** Fetches the issuer's current JWKS; rejects when it cannot (see `fetchJwks`). */
  readonly fetchJwks?: () => Promise<unknown>;
  /** Keys from the config (inline or a file): nothing is ever fetched. */
  readonly inline?: JSONWebKeySet;
}

/** The slice of the (pino) logger used here, so tests can pass a recorder. */
export interface KeySetLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface KeySetOptions {
  /** Least time between refetches caused by a `kid` the set lacks. */
  readonly cooldownMs: number;
  /** Age after which the set is refreshed in the background. */
  readonly maxAgeMs: number;
  /** Least time between attempts while the set is empty or stale and fetches fail. */
  readonly retryMs?: number;
  readonly now?: () => number;
  readonly logger?: KeySetLogger;
}

interface BuiltKeySet {
  readonly select: JWTVerifyGetKey;
  /** The fetched document as JSON, to tell an unchanged set from a rotated one. */
  readonly fingerprint: string;
  readonly kids: readonly (string | undefined)[];
}

const SILENT: KeySetLogger = { info() {}, warn() {}, debug() {} };

export class IssuerKeySet {
  /** Usable as jwtVerify's key argument. */
  readonly getKey: JWTVerifyGetKey;
  /** Keys from the config: never fetched, so never refreshed. */
  private readonly inline: BuiltKeySet | undefined;
  /** Fetched keys: the last good set, refreshed when stale, kept while fetches fail. */
  private readonly fetched: RefreshingValue<BuiltKeySet> | undefined;
  private readonly retryMs: number;
  private readonly now: () => number;
  private readonly logger: KeySetLogger;

  constructor(
    source: KeySetSource,
    private readonly options: KeySetOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.retryMs = Math.min(options.retryMs ?? KEY_RETRY_MS, options.cooldownMs);
    this.logger = options.logger ?? SILENT;
    if (source.inline) {
      try {
        this.inline = buildKeySet(source.inline, this.logger);
      } catch (error) {
        this.logger.warn({ err: (error as Error).message }, 'configured issuer keys are unusable');
      }
    } else if (source.fetchJwks) {
      const fetchJwks = source.fetchJwks;
      this.fetched = new RefreshingValue({
        load: (previous) => this.fetchKeys(fetchJwks, previous),
        maxAgeMs: options.maxAgeMs,
        retryMs: this.retryMs,
        now: this.now,
        onFailure: (error, failuresInARow) => {
          // The last-known-good keys stay: an IdP outage or a broken answer must not lock users out.
          const log = { err: (error as Error).message, keepingCachedKeys: this.fetched?.value !== undefined };
          if (failuresInARow > 1) this.logger.debug(log, 'issuer keys still cannot be fetched');
          else this.logger.warn(log, 'issuer keys cannot be fetched');
        },
      });
    } else {
      throw new TypeError('IssuerKeySet needs inline keys or a way to fetch them');
    }
    this.getKey = (header, token) => this.select(header, token);
  }

  /** Whether keys are in hand (fetching them if none are and an attempt is due). */
  async ready(): Promise<boolean> {
    return (this.fetched ? await this.fetched.get() : this.inline) !== undefined;
  }

  private async select(...[header, token]: Parameters<JWTVerifyGetKey>): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> {
    // A stale fetched set is refreshed behind this request; with none yet, one is fetched first if due.
    const keys = this.fetched ? await this.fetched.get() : this.inline;
    if (!keys) throw issuerUnavailable(this.retryAfterSeconds());
    try {
      return await keys.select(header, token);
    } catch (error) {
      // RFC 7517 §4.5 / RFC 7515 §4.1.4: a kid we do not know may be a key the IdP just rotated in.
      // At most one refetch per cooldown, shared by concurrent callers: a burst of forged kids costs the IdP one request.
      if (!(error instanceof errors.JWKSNoMatchingKey) || !this.fetched?.due(this.options.cooldownMs)) throw error;
      await this.fetched.refresh();
      return this.fetched.value!.select(header, token);
    }
  }

  /** A fetched set whose document is unchanged is kept as built; a changed one is built anew (and throws if no key is usable). */
  private async fetchKeys(fetchJwks: () => Promise<unknown>, previous: BuiltKeySet | undefined): Promise<BuiltKeySet> {
    const document = await fetchJwks();
    const fingerprint = JSON.stringify(document);
    if (fingerprint === previous?.fingerprint) {
      if (this.fetched!.failuresInARow > 0) this.logger.info({ kids: previous.kids }, 'issuer keys fetched again');
      return previous;
    }
    const built = buildKeySet(document, this.logger, fingerprint);
    this.logger.info({ kids: built.kids }, 'issuer keys fetched');
    return built;
  }

  /** Seconds until the next fetch attempt is due (Retry-After, RFC 9110 §10.2.3). */
  private retryAfterSeconds(): number {
    const attemptedAt = this.fetched?.lastAttemptAt ?? Number.NEGATIVE_INFINITY;
    if (!Number.isFinite(attemptedAt)) return this.retryMs / 1000;
    return Math.max(1, Math.ceil((attemptedAt + this.retryMs - this.now()) / 1000));
  }
}

/** Builds the selector over the usable keys of a JWKS (RFC 7517 §5); throws if none is usable. */
function buildKeySet(document: unknown, logger: KeySetLogger, fingerprint = JSON.stringify(document)): BuiltKeySet {
  if (!isObject(document) || !Array.isArray(document.keys)) throw new Error('not a JWK Set ({"keys": [...]})');
  const usable: JWK[] = [];
  for (const jwk of document.keys as unknown[]) {
    const refusal = unusableReason(jwk);
    if (refusal === undefined) {
      usable.push(jwk as JWK);
      continue;
    }
    const about = { kid: isObject(jwk) ? jwk.kid : undefined, reason: refusal.reason };
    if (refusal.alarming) logger.warn(about, 'issuer JWKS key refused');
    else logger.debug(about, 'issuer JWKS key skipped');
  }
  if (usable.length === 0) throw new Error(`no usable signature verification key among ${document.keys.length}`);
  return { select: createLocalJWKSet({ keys: usable }), fingerprint, kids: usable.map((jwk) => jwk.kid) };
}

/** Why a key must not verify tokens; `alarming` when the IdP publishes something it must not. */
export function unusableReason(jwk: unknown): { reason: string; alarming: boolean } | undefined {
  if (!isObject(jwk) || typeof jwk.kty !== 'string') return { reason: 'not a JWK', alarming: true };
  // RFC 7518 §6.2.2.1 / §6.3.2.1 / RFC 8037 §2: `d` is the private key. Published, it is compromised.
  if (jwk.d !== undefined) return { reason: 'contains private key material', alarming: true };
  // A symmetric key in a public document is a published secret; HMAC is not accepted anyway.
  if (jwk.kty === 'oct') return { reason: 'is a symmetric (oct) key', alarming: true };
  if (!['RSA', 'EC', 'OKP'].includes(jwk.kty)) return { reason: `has unsupported kty '${jwk.kty}'`, alarming: false };
  // RFC 7517 §4.2: `use` other than `sig` is for encryption. §4.3: `key_ops` must allow verify.
  if (jwk.use !== undefined && jwk.use !== 'sig') return { reason: `is for use '${String(jwk.use)}'`, alarming: false };
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) {
    return { reason: 'key_ops does not allow verify', alarming: false };
  }
  // RFC 7518 §3.3 / §3.5: RSA keys of 2048 bits or larger MUST be used.
  if (jwk.kty === 'RSA' && rsaModulusBits(jwk.n) < 2048) return { reason: 'RSA modulus under 2048 bits', alarming: true };
  return undefined;
}

/** Bit length of a base64url RSA modulus (RFC 7518 §6.3.1.1); 0 when it is not one. */
function rsaModulusBits(n: unknown): number {
  if (typeof n !== 'string') return 0;
  let bytes: Uint8Array;
  try {
    bytes = base64url.decode(n);
  } catch {
    return 0;
  }
  const start = bytes.findIndex((byte) => byte !== 0);
  if (start === -1) return 0;
  return (bytes.length - start - 1) * 8 + bytes[start]!.toString(2).length;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export type JwksFetch = (
  url: URL,
  init: { signal: AbortSignal; headers: Record<string, string>; redirect: 'manual' },
) => Promise<Response>;

/**
 * GETs a JWK Set (RFC 7517 §5) within `timeoutMs`: only a 2xx answer whose body is JSON with a
 * `keys` array counts. Redirects are not followed (as with jose's remote set, which this
 * replaces): the jwks_uri is configured or comes from verified metadata, nowhere else.
 */
export async function fetchJwks(url: URL, timeoutMs: number, fetchFn: JwksFetch = fetch): Promise<JSONWebKeySet> {
  const signal = AbortSignal.timeout(timeoutMs);
  const headers = { accept: 'application/jwk-set+json, application/json' };
  const response = await fetchFn(url, { signal, headers, redirect: 'manual' }).catch((error: Error) => {
    throw new Error(`${url.href}: ${signal.aborted ? `no answer within ${timeoutMs} ms` : error.message}`);
  });
  if (response.status < 200 || response.status > 299) {
    await response.body?.cancel().catch(() => undefined);
    throw new Error(`${url.href}: HTTP ${response.status}`);
  }
  let text: string;
  try {
    text = await readBoundedText(response, MAX_IDP_ANSWER_BYTES);
  } catch (error) {
    throw new Error(`${url.href}: ${signal.aborted ? `no answer within ${timeoutMs} ms` : (error as Error).message}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new Error(`${url.href}: the answer is not JSON`);
  }
  if (!isObject(document) || !Array.isArray(document.keys)) throw new Error(`${url.href}: the answer is not a JWK Set`);
  return document as unknown as JSONWebKeySet;
}
