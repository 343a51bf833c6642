import type { AuthorizationServer } from '../authorization-server/service.js';
import type { RouteConfig, UpstreamAuthConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import type { KeyValueStore } from '../store/types.js';
import { ConnectedAccountCredential } from './connected-account.js';
import { IdpTokenCredential } from './idp-token.js';
import type { CredentialSource } from './modes.js';
import { StaticCredential } from './static.js';
import { TokenExchangeCredential } from './token-exchange.js';

export type { CredentialSource };

/**
 * Every route's credential source, made by the composition root and kept across reloads: a
 * route whose upstreamAuth did not change keeps its source (its exchanged credentials, its file
 * watch), so a policy edit costs no exchange; a changed or removed one is closed.
 */
export class UpstreamCredentials {
  private readonly byRoute = new Map<string, { readonly fingerprint: string; readonly source: CredentialSource }>();
  /** The facade of the config in force: the users' own tokens (idpToken, connectedAccount) are kept there. */
  private facade: AuthorizationServer | undefined;

  constructor(
    private readonly store: KeyValueStore,
    private readonly logger: Logger,
  ) {}

  /**
   * Makes the sources of `routes` (before the routes' pipelines are built), closing those no
   * route uses now; sources kept see `facade` from now on.
   */
  update(routes: readonly RouteConfig[], timeoutMs: number, facade?: AuthorizationServer): void {
    this.facade = facade;
    const kept = new Set<string>();
    for (const route of routes) {
      if (!route.upstreamAuth) continue;
      kept.add(route.name);
      const fingerprint = JSON.stringify([route.upstreamAuth, timeoutMs]);
      const existing = this.byRoute.get(route.name);
      if (existing?.fingerprint === fingerprint) continue;
      existing?.source.close();
      this.byRoute.set(route.name, { fingerprint, source: this.make(route.name, route.upstreamAuth, timeoutMs) });
    }
    for (const [name, { source }] of this.byRoute) {
      if (kept.has(name)) continue;
      source.close();
      this.byRoute.delete(name);
    }
  }

  sourceFor(route: RouteConfig): CredentialSource | undefined {
    return route.upstreamAuth ? this.byRoute.get(route.name)?.source : undefined;
  }

  close(): void {
    for (const { source } of this.byRoute.values()) source.close();
    this.byRoute.clear();
  }

  private make(routeName: string, config: UpstreamAuthConfig, timeoutMs: number): CredentialSource {
    switch (config.mode) {
      case 'static':
        return new StaticCredential(config, this.logger, routeName);
      case 'tokenExchange':
        return new TokenExchangeCredential(config, { routeName, store: this.store, logger: this.logger, timeoutMs });
      case 'idpToken':
        return new IdpTokenCredential({ routeName, facade: () => this.facade, logger: this.logger, timeoutMs });
      case 'connectedAccount':
        return new ConnectedAccountCredential(config, { routeName, facade: () => this.facade, logger: this.logger, timeoutMs });
    }
  }
}
