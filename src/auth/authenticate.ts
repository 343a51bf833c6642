import { createHash } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import type { IssuerConfig } from '../config/types.js';
import { Refusal } from '../errors.js';
import { StoreFullError, type KeyValueStore, type RecordOnceOutcome } from '../store/types.js';
import { extractCredentials, type Credentials } from './bearer.js';
import { admittedBefore, rememberAdmission, type Connection } from './connection-admission.js';
import { DPOP_ALGORITHMS, invalidProof, verifyDpopProof } from './dpop.js';
import { principalFromIntrospection, type Introspector } from './introspection.js';
import type { IssuerDirectory } from './issuers.js';
import { principalKey, type Principal } from './principal.js';
import type { VerifiedTokenCache } from './token-cache.js';
import { unverifiedIssuer, verifyJwtAccessToken } from './verify-jwt.js';

export interface AuthRoute {
  readonly name: string;
  /** The route's resource URL (publicUrl + path): the audience its tokens must carry. */
  readonly resource: string;
  /**
   * The route's checks on the principal alone (its scopes), made before a DPoP proof's jti is
   * recorded: a request they refuse records nothing, so a token that may not use the route cannot
   * fill the replay space. Only checks fixed by the token belong here: a replay of that proof
   * meets the same refusal. What depends on the rest of the request (headers, body) comes after
   * the record, or the proof could be replayed with another body.
   */
  readonly admit?: (principal: Principal) => void;
}

/** What of the HTTP request a DPoP proof is checked against (RFC 9449 §4.3). */
export interface ProofContext {
  readonly method: string;
  /** Every `DPoP` header value the request carried (exactly one is allowed). */
  readonly dpopProofs: readonly string[];
  /** The request's log context: told the principal once its proof is verified, so a refusal by `admit` still names who was refused. */
  readonly context?: { principal?: Principal } | undefined;
}

const DPOP_CHALLENGE = { dpop: { algs: DPOP_ALGORITHMS } };
/** A principal at its bound waits for its oldest proofs' windows to pass: seconds, not minutes. */
const DPOP_OWNER_FULL_RETRY_SECONDS = 5;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/**
 * Authorization header → verified principal for a route, or a thrown Refusal. A JWT is
 * verified locally against its issuer's keys; any other token is opaque and goes to the one
 * issuer trusted by the route that introspects (RFC 7662), never to any other IdP. A token
 * bound to a key (`cnf.jkt`) must come with a DPoP proof of that key (RFC 9449), per request.
 */
export class Authenticator {
  constructor(
    private readonly issuers: IssuerDirectory,
    private readonly cache: VerifiedTokenCache,
    private readonly store: KeyValueStore,
    private readonly introspectors: readonly Introspector[] = [],
  ) {}

  /**
   * The principal of a token this route has already verified, when admitting it needs no await
   * (no DPoP proof to check): the common case, answered without a promise. Undefined when the
   * token must go through authenticate(); throws the same refusals it would. Given the request's
   * connection, the same header on it again is admitted without another look-up (connection-admission.ts).
   */
  cachedPrincipal(authorization: string | undefined, route: AuthRoute, connection?: Connection): Principal | undefined {
    if (connection !== undefined) {
      const again = admittedBefore(connection, authorization, route.name, this.cache);
      if (again !== undefined) return again.principal;
    }
    const credentials = extractCredentials(authorization);
    const verified = this.cache.entry(route.name, credentials.token);
    if (verified === undefined || verified.principal.confirmationJkt !== undefined) return undefined;
    checkUnboundToken(this.issuers.trusted(verified.principal.issuer, route.name).config, credentials);
    if (connection !== undefined) rememberAdmission(connection, authorization!, route.name, this.cache, verified);
    return verified.principal;
  }

  async authenticate(authorization: string | undefined, route: AuthRoute, request: ProofContext): Promise<Principal> {
    const credentials = extractCredentials(authorization);
    const { principal, issuer } = await this.principalFor(credentials.token, route);
    await this.checkSenderConstraint(principal, issuer, credentials, route, request);
    return principal;
  }

  private async principalFor(token: string, route: AuthRoute): Promise<{ principal: Principal; issuer: IssuerConfig }> {
    const cached = this.cache.get(route.name, token);
    if (cached) return { principal: cached, issuer: this.issuers.trusted(cached.issuer, route.name).config };
    if (!isJws(token)) return this.introspect(token, route); // cached in the store, with its own TTL cap
    const trusted = this.issuers.trusted(unverifiedIssuer(token), route.name);
    const principal = await verifyJwtAccessToken(token, trusted, route.resource);
    this.cache.set(route.name, token, principal);
    return { principal, issuer: trusted.config };
  }

  private async introspect(token: string, route: AuthRoute): Promise<{ principal: Principal; issuer: IssuerConfig }> {
    const introspector = this.introspectors.find(({ issuer }) => issuer.routes === undefined || issuer.routes.includes(route.name));
    if (!introspector) throw new Refusal('invalid_token', 'The access token is malformed', { tokenFailure: 'malformed' });
    const response = await introspector.introspect(token);
    const principal = principalFromIntrospection(response, introspector.issuer, route.resource, Math.floor(Date.now() / 1000), introspector.fallbackTtlSeconds);
    return { principal, issuer: introspector.issuer };
  }

  /**
   * RFC 9449 §7: a DPoP-bound token is only good with the DPoP scheme and a fresh, single-use
   * proof of its key; the issuer's `dpop` setting decides whether unbound tokens are accepted
   * (allowed), refused (required), or whether DPoP is refused altogether (off).
   */
  private async checkSenderConstraint(principal: Principal, issuer: IssuerConfig, credentials: Credentials, route: AuthRoute, request: ProofContext): Promise<void> {
    const jkt = principal.confirmationJkt;
    if (jkt === undefined) return checkUnboundToken(issuer, credentials);
    if (issuer.dpop === 'off') throw new Refusal('invalid_token', 'DPoP is not accepted for this issuer', { tokenFailure: 'binding' });
    if (credentials.scheme !== 'dpop') throw new Refusal('invalid_token', 'A DPoP-bound access token must be sent with the DPoP scheme', { ...DPOP_CHALLENGE, tokenFailure: 'binding' });
    if (request.dpopProofs.length !== 1) throw invalidProof(request.dpopProofs.length === 0 ? 'A DPoP proof is required' : 'Exactly one DPoP proof is allowed');
    const proof = await verifyDpopProof(request.dpopProofs[0]!, {
      method: request.method,
      uri: route.resource,
      accessToken: credentials.token,
      jkt,
      nowSeconds: Math.floor(Date.now() / 1000),
      clockToleranceSeconds: issuer.clockToleranceSeconds,
    });
    if (request.context) request.context.principal = principal;
    route.admit?.(principal);
    // §11.1: each proof once, across replicas; without the store a replay cannot be ruled out.
    // Per principal, so one principal's flood is refused on its own (see recordOnce); owner and
    // id are digests, so every record is the same few bytes whatever the client sent.
    const owner = sha256(principalKey(principal));
    const id = sha256(`${jkt}\u0000${proof.jti}`);
    let outcome: RecordOnceOutcome;
    try {
      outcome = await this.store.recordOnce(owner, id, proof.replayWindowSeconds * 1000);
    } catch (error) {
      throw new Refusal('store_unavailable', error instanceof StoreFullError ? 'DPoP replay store full' : 'DPoP replay store unavailable', { retryAfterSeconds: 1 });
    }
    if (outcome === 'seen') throw invalidProof('The DPoP proof was already used');
    if (outcome === 'owner-full') {
      throw new Refusal('rate_limited', 'Too many DPoP proofs within their replay window for this principal', { retryAfterSeconds: DPOP_OWNER_FULL_RETRY_SECONDS });
    }
  }
}

/** RFC 9449 §7 for a token bound to no key: accepted as a bearer token unless the issuer requires DPoP. */
function checkUnboundToken(issuer: IssuerConfig, credentials: Credentials): void {
  if (issuer.dpop === 'off') {
    if (credentials.scheme === 'dpop') throw new Refusal('invalid_token', 'DPoP is not accepted for this issuer', { tokenFailure: 'binding' });
    return;
  }
  if (issuer.dpop === 'required') throw new Refusal('invalid_token', 'The access token must be DPoP-bound', { ...DPOP_CHALLENGE, tokenFailure: 'binding' });
  if (credentials.scheme === 'dpop') throw new Refusal('invalid_token', 'The access token is not DPoP-bound', { ...DPOP_CHALLENGE, tokenFailure: 'binding' });
}

/** A compact JWS (three segments, a JSON header): verified locally. Anything else is opaque. */
function isJws(token: string): boolean {
  if (token.split('.').length !== 3) return false;
  try {
    decodeProtectedHeader(token);
    return true;
  } catch {
    return false;
  }
}
