import { randomUUID } from 'node:crypto';
import type { AuthorizationServer } from '../authorization-server/service.js';
import type { Principal } from '../auth/principal.js';
import { BoundedMap } from '../cache/bounded-map.js';
import type { ConnectedAccountUpstreamAuth } from '../config/types.js';
import { isRefusal, type Refusal, type UrlElicitation } from '../errors.js';
import type { CredentialSource } from './modes.js';
import type { UserCredentialDeps } from './idp-token.js';
import { accountNotConnected, credentialUnavailable, notTheFacadesToken } from './refusals.js';
import { UserTokens, type UserTokenSource } from './user-tokens.js';

/** One connect link is handed out again for this long (its request lives ten minutes). */
const LINK_REUSE_MS = 5 * 60_000;

interface Link {
  readonly nonce: string;
  readonly elicitation: UrlElicitation;
}

/**
 * routes[].upstreamAuth.connectedAccount: the user's own token at a third-party service, from a
 * connection they made on the gateway's page (authorization-server/connect.ts), kept sealed in the
 * store and renewed with its refresh token (user-tokens.ts). A user without one is asked to
 * connect through a URL-mode elicitation naming a one-time connect link bound to them (MCP
 * client/elicitation §URL Mode Elicitation for OAuth Flows); the client retries once connected.
 */
export class ConnectedAccountCredential implements CredentialSource {
  readonly mode = 'connectedAccount' as const;
  readonly header: string;
  private readonly tokens: UserTokens;
  /** The link last handed to each user, so a client retrying at once does not mint a request each time. */
  private readonly links = new BoundedMap<string, Link>({ maxEntries: 10_000, maxWeight: 8 * 1024 * 1024, weigh: (key, value) => key.length + value.elicitation.url.length + value.elicitation.message.length });
  /**
   * Per facade (one per config loaded, read-only for its life): where this connection's tokens
   * are kept and renewed, made once with its disconnect listener rather than on every request.
   */
  private readonly sources = new WeakMap<AuthorizationServer, UserTokenSource>();

  constructor(
    private readonly config: ConnectedAccountUpstreamAuth,
    private readonly deps: UserCredentialDeps,
  ) {
    this.header = config.header;
    const logger = deps.logger.child({ route: deps.routeName, upstreamAuth: 'connectedAccount', provider: config.name });
    this.tokens = new UserTokens({
      mode: 'connectedAccount',
      prefix: config.prefix,
      logger,
      timeoutMs: deps.timeoutMs,
      missing: (principal) => this.connectFirst(principal),
      found: (subject) => this.links.delete(subject),
    });
  }

  current(principal: Principal): string | Promise<string> {
    const as = this.facade();
    // The route accepts the facade's tokens only (config); anything else names no user it knows.
    if (principal.issuer !== as.issuer) throw notTheFacadesToken();
    return this.tokens.current(principal.subject, principal, this.sourceOf(as));
  }

  async forget(principal: Principal, value: string): Promise<void> {
    this.tokens.forget(principal.subject, value);
  }

  /** Refused even renewed: the connection is dropped and the user asked to connect again. */
  async refusedAgain(principal: Principal): Promise<Refusal> {
    await this.tokens.discard(principal.subject, this.sourceOf(this.facade()));
    return this.connectFirst(principal).catch((refusal: Refusal) => refusal);
  }

  close(): void {}

  /**
   * A connect request bound to this principal, and the refusal that names its link. The link
   * handed out last is handed out again while its request is still open (a link someone else
   * opened is burnt, and a new one is made).
   */
  private async connectFirst(principal: Principal): Promise<never> {
    const as = this.facade();
    this.sourceOf(as);
    const connections = as.connections!;
    try {
      let link = this.links.get(principal.subject);
      if (link === undefined || !(await connections.isOpen(link.nonce))) {
        const elicitationId = randomUUID();
        const nonce = await connections.request({ subject: principal.subject, ...(principal.clientId !== undefined ? { clientId: principal.clientId } : {}), connection: this.config.connection, route: this.deps.routeName, elicitationId });
        link = { nonce, elicitation: { url: `${as.endpoints.connect}?request=${nonce}`, elicitationId, message: `Connect your ${this.config.name} account so that ${this.deps.routeName} can act for you` } };
        this.links.set(principal.subject, link, Date.now() + LINK_REUSE_MS);
      }
      throw accountNotConnected(link.elicitation);
    } catch (error) {
      if (isRefusal(error)) throw error;
      // The store could not keep the request: no link can be handed out now.
      throw credentialUnavailable(1);
    }
  }

  private facade(): AuthorizationServer {
    const as = this.deps.facade();
    if (!as) throw credentialUnavailable(5);
    return as;
  }

  private sourceOf(as: AuthorizationServer): UserTokenSource {
    let source = this.sources.get(as);
    if (source) return source;
    const provider = as.providers.get(this.config.connection);
    // The config loader refuses connectedAccount without a facade that keeps tokens; a reload in between is all this guards.
    if (!as.connections || !provider) throw credentialUnavailable(5);
    as.connections.onDisconnect((connection, subject) => {
      if (connection === this.config.connection) this.tokens.drop(subject);
    });
    source = { store: as.connections.slot(this.config.connection), refresh: (refreshToken) => provider.refresh(refreshToken) };
    this.sources.set(as, source);
    return source;
  }
}
