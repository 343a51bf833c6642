import type { TokenOutcome, TokenSet, UserTokenStore } from '../authorization-server/token-sets.js';
import type { Principal } from '../auth/principal.js';
import { BoundedMap } from '../cache/bounded-map.js';
import type { Logger } from '../observability/logger.js';
import { credentialUnavailable } from './refusals.js';

/** Where one user's tokens are kept, and how they are renewed (the IdP's or a provider's token endpoint). */
export interface UserTokenSource {
  readonly store: UserTokenStore;
  refresh(refreshToken: string): Promise<TokenOutcome>;
}

export interface UserTokensOptions {
  readonly mode: 'idpToken' | 'connectedAccount';
  /** Put before the access token in the header value (`Bearer `). */
  readonly prefix: string;
  readonly logger: Logger;
  /** Longest wait for the token endpoint, or for another replica's refresh. */
  readonly timeoutMs: number;
  /** The user has no usable token: rejects with the Refusal that tells the client what to do. */
  missing(principal: Principal): Promise<never>;
  /** A usable token was found for the user. */
  found?(subject: string): void;
}

/** A token is renewed this long before it expires (at most a tenth of its life), so none expires in flight. */
const MARGIN_MS = 30_000;
/** A token is reused from memory at most this long before the store is read again: a disconnect, a new login or another replica's refresh is seen within it. */
const MEMORY_MS = 60_000;
/** After the token endpoint failed, refreshes wait this long (and Retry-After says so). */
const COOLDOWN_MS = 2_000;
/** A token the upstream refused is not sent again for this long (it is renewed instead). */
const REFUSED_MS = 60_000;
/** Beyond this many users waiting on the store or a token endpoint at once, more get 503. */
const MAX_CONCURRENT = 64;
/** How often a replica waiting on another's refresh looks at the store. */
const POLL_MS = 100;

interface Held {
  readonly header: string;
}

/**
 * The users' own tokens a route sends upstream (idpToken, connectedAccount): kept sealed in the
 * store by the authorization server, read into memory for a minute at most, and refreshed with
 * their refresh token (RFC 6749 §6) shortly before they expire, or when the upstream refused one.
 * Concurrent requests of one user share one read or refresh; across replicas, one claims the
 * refresh in the store and the others wait for what it writes back (a rotated refresh token used
 * twice would be refused, or revoke the whole grant: RFC 9700 §4.14.2). A user without a usable
 * token, or whose refresh is refused, is told to act (`missing`); a token endpoint that fails is
 * a 503. The tokens themselves are never logged.
 */
export class UserTokens {
  private readonly memory = new BoundedMap<string, Held>({ maxEntries: 10_000, maxWeight: 32 * 1024 * 1024, maxEntryWeight: 128 * 1024, weigh: (key, value) => key.length + value.header.length });
  private readonly inflight = new Map<string, Promise<string>>();
  /** Per user, the access token the upstream refused last: renewed rather than sent again. */
  private readonly refusedUpstream = new BoundedMap<string, string>({ maxEntries: 10_000, maxWeight: 16 * 1024 * 1024, weigh: (key, value) => key.length + value.length });
  private unavailableUntilMs = 0;

  constructor(private readonly options: UserTokensOptions) {}

  /** The header value for `subject`: a string when held in memory, else a promise. Throws or rejects with a Refusal. */
  current(subject: string, principal: Principal, source: UserTokenSource): string | Promise<string> {
    const held = this.memory.get(subject);
    if (held !== undefined) return held.header;
    const pending = this.inflight.get(subject);
    if (pending !== undefined) return pending;
    if (this.inflight.size >= MAX_CONCURRENT) throw credentialUnavailable(1);
    const obtaining = this.obtain(subject, principal, source).finally(() => this.inflight.delete(subject));
    this.inflight.set(subject, obtaining);
    return obtaining;
  }

  /** The upstream refused `header`: it is not sent again; the next request renews it (or tells the user to act). */
  forget(subject: string, header: string): void {
    const held = this.memory.get(subject);
    // A fresher token obtained meanwhile stays.
    if (held !== undefined && held.header !== header) return;
    this.memory.delete(subject);
    this.refusedUpstream.set(subject, header.slice(this.options.prefix.length), Date.now() + REFUSED_MS);
  }

  /** Lets go of what memory holds for the user (they disconnected): the store is read next time. */
  drop(subject: string): void {
    this.memory.delete(subject);
  }

  /** Forgets the user's tokens everywhere (the upstream refused them even renewed). */
  async discard(subject: string, source: UserTokenSource): Promise<void> {
    this.memory.delete(subject);
    await source.store.clear(subject).catch(() => undefined);
  }

  private async obtain(subject: string, principal: Principal, source: UserTokenSource): Promise<string> {
    const deadline = Date.now() + this.options.timeoutMs;
    let tokens = await this.read(source, subject);
    for (;;) {
      if (tokens === undefined) return this.options.missing(principal);
      if (this.usable(subject, tokens)) return this.hold(subject, tokens);
      if (tokens.refreshToken === undefined) {
        // Expired, or refused upstream, with nothing to renew it: the user must act again.
        await this.discard(subject, source);
        return this.options.missing(principal);
      }
      const waitMs = this.unavailableUntilMs - Date.now();
      if (waitMs > 0) throw credentialUnavailable(Math.ceil(waitMs / 1000));
      if (await source.store.claimRefresh(subject, this.options.timeoutMs + 1_000).catch(() => false)) return this.refresh(subject, principal, source);
      // Another replica (or an earlier request here) is renewing it: its answer lands in the store.
      if (Date.now() >= deadline) throw credentialUnavailable(1);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      tokens = await this.read(source, subject);
    }
  }

  /** Holding the claim: read once more (a refresh may have landed just before it), then renew. */
  private async refresh(subject: string, principal: Principal, source: UserTokenSource): Promise<string> {
    try {
      const latest = await this.read(source, subject);
      if (latest === undefined) return await this.options.missing(principal);
      if (this.usable(subject, latest)) return this.hold(subject, latest);
      const outcome = await source.refresh(latest.refreshToken!);
      switch (outcome.kind) {
        case 'issued': {
          const renewed: TokenSet = { ...outcome.tokens, refreshToken: outcome.tokens.refreshToken ?? latest.refreshToken!, ...(outcome.tokens.idToken ?? latest.idToken ? { idToken: outcome.tokens.idToken ?? latest.idToken! } : {}) };
          await source.store.write(subject, renewed).catch((error: unknown) => this.options.logger.warn({ event: 'upstream-credential', err: (error as Error).message }, 'a renewed user token could not be stored: other replicas will renew it again'));
          this.options.logger.info({ event: 'upstream-credential', upstreamAuth: this.options.mode, subject, expiresAt: renewed.expiresAt }, "the user's token was renewed with its refresh token");
          return this.hold(subject, renewed);
        }
        case 'refused':
          this.options.logger.warn({ event: 'upstream-credential', upstreamAuth: this.options.mode, subject, error: outcome.error }, "the user's refresh token was refused: they must act again");
          await this.discard(subject, source);
          return await this.options.missing(principal);
        case 'unavailable':
          this.options.logger.error({ event: 'upstream-credential', upstreamAuth: this.options.mode, why: outcome.why }, "renewing a user's token failed: requests on this route get 503");
          this.unavailableUntilMs = Date.now() + COOLDOWN_MS;
          throw credentialUnavailable(COOLDOWN_MS / 1000);
      }
    } finally {
      await source.store.releaseRefresh(subject).catch(() => undefined);
    }
  }

  private async read(source: UserTokenSource, subject: string): Promise<TokenSet | undefined> {
    try {
      return await source.store.read(subject);
    } catch {
      throw credentialUnavailable(1);
    }
  }

  private usable(subject: string, tokens: TokenSet): boolean {
    if (this.refusedUpstream.get(subject) === tokens.accessToken) return false;
    return tokens.expiresAt === undefined || tokens.expiresAt * 1000 - Date.now() > marginMs(tokens);
  }

  private hold(subject: string, tokens: TokenSet): string {
    // A token a header cannot carry (CR, LF, non-ASCII) would split the request head.
    if (!/^[\x21-\x7e]+$/.test(tokens.accessToken)) throw credentialUnavailable(5);
    const header = `${this.options.prefix}${tokens.accessToken}`;
    const until = tokens.expiresAt === undefined ? Infinity : tokens.expiresAt * 1000 - marginMs(tokens);
    this.memory.set(subject, { header }, Math.min(Date.now() + MEMORY_MS, until));
    this.options.found?.(subject);
    return header;
  }
}

/** Renewed a tenth of its lifetime early, at most MARGIN_MS; without a known lifetime, MARGIN_MS. */
function marginMs(tokens: TokenSet): number {
  if (tokens.expiresAt === undefined || tokens.issuedAt === undefined || tokens.expiresAt <= tokens.issuedAt) return MARGIN_MS;
  return Math.min(MARGIN_MS, ((tokens.expiresAt - tokens.issuedAt) * 1000) / 10);
}
