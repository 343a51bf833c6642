import type { AuthorizationServer } from '../authorization-server/service.js';
import type { Principal } from '../auth/principal.js';
import type { Refusal } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { CredentialSource } from './modes.js';
import { credentialUnavailable, idpTokenMissing, idpTokenRefused, notTheFacadesToken } from './refusals.js';
import { UserTokens, type UserTokenSource } from './user-tokens.js';

export interface UserCredentialDeps {
  readonly routeName: string;
  /** The authorization-server facade of the config in force (rebuilt on each reload). */
  readonly facade: () => AuthorizationServer | undefined;
  readonly logger: Logger;
  /** Longest wait for the IdP or provider, or for another replica's refresh: timeouts.issuerDiscovery. */
  readonly timeoutMs: number;
}

/**
 * routes[].upstreamAuth.idpToken: the access token the user's own login at the facade's IdP
 * produced, kept sealed by the facade (authorization-server/idp-tokens.ts), sent as
 * `Authorization: Bearer` and renewed with the IdP's refresh token (user-tokens.ts). Only the
 * facade's own tokens name a user it logged in; a user it holds nothing usable for must sign in
 * again (401, a fresh challenge).
 */
export class IdpTokenCredential implements CredentialSource {
  readonly mode = 'idpToken' as const;
  readonly header = 'authorization';
  private readonly tokens: UserTokens;
  /** Per facade (one per config loaded, read-only for its life): made once, not on every request. */
  private readonly sources = new WeakMap<AuthorizationServer, UserTokenSource & { readonly issuer: string }>();

  constructor(private readonly deps: UserCredentialDeps) {
    const logger = deps.logger.child({ route: deps.routeName, upstreamAuth: 'idpToken' });
    this.tokens = new UserTokens({ mode: 'idpToken', prefix: 'Bearer ', logger, timeoutMs: deps.timeoutMs, missing: () => Promise.reject(idpTokenMissing()) });
  }

  current(principal: Principal): string | Promise<string> {
    const source = this.source();
    if (principal.issuer !== source.issuer) throw notTheFacadesToken();
    return this.tokens.current(principal.subject, principal, source);
  }

  async forget(principal: Principal, value: string): Promise<void> {
    this.tokens.forget(principal.subject, value);
  }

  /** Refused even renewed: the kept tokens are dropped, so the user's next login brings new ones. */
  async refusedAgain(principal: Principal): Promise<Refusal> {
    await this.tokens.discard(principal.subject, this.source());
    return idpTokenRefused();
  }

  close(): void {}

  private source(): UserTokenSource & { readonly issuer: string } {
    const as = this.deps.facade();
    // The config loader refuses idpToken without a facade that keeps tokens; a reload in between is all this guards.
    if (!as?.vault) throw credentialUnavailable(5);
    let source = this.sources.get(as);
    if (!source) {
      const { vault, upstream } = as;
      source = { issuer: as.issuer, store: vault, refresh: (refreshToken) => upstream.refresh(refreshToken) };
      this.sources.set(as, source);
    }
    return source;
  }
}
