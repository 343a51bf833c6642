import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Authenticator } from './auth/authenticate.js';
import { buildAuthorizationServer, type AuthorizationServerMemory } from './authorization-server/build.js';
import type { AuthorizationServer } from './authorization-server/service.js';
import { Introspector } from './auth/introspection.js';
import { IssuerDirectory } from './auth/issuers.js';
import { VerifiedTokenCache } from './auth/token-cache.js';
import { settleReload } from './config/restart-only.js';
import type { GatewayConfig, IssuerConfig } from './config/types.js';
import type { ConfigHealth } from './config/watch.js';
import { getRequestListener } from '@hono/node-server';
import { buildAdminApp } from './http/admin.js';
import { buildApp, type HttpApp } from './http/app.js';
import { ForwardedHeaders } from './http/forwarded.js';
import { Lifecycle } from './http/lifecycle.js';
import { createListener } from './http/listener.js';
import { originChecker } from './http/origin.js';
import { readinessReport, type ReadinessSources } from './http/readiness.js';
import { requestListener } from './http/request-listener.js';
import { routeRuntime, type RouteRuntime } from './http/routes.js';
import { SessionBindings } from './mcp/sessions.js';
import { createLogger, type Logger } from './observability/logger.js';
import { GatewayMetrics } from './observability/metrics.js';
import { Forwarder } from './proxy/forward.js';
import { IdentitySigner } from './proxy/identity.js';
import { Tracing } from './observability/tracing.js';
import { packageVersion } from './version.js';
import { RateLimiter } from './ratelimit/limiter.js';
import { openStore } from './store/index.js';
import type { KeyValueStore } from './store/types.js';
import { UpstreamCredentials } from './upstream-auth/registry.js';

export interface Gateway {
  /** Where the gateway listens, e.g. http://127.0.0.1:8080 (https:// with tls). */
  readonly url: string;
  /** The admin listener (metrics, health), when configured. */
  readonly adminUrl: string | undefined;
  /** The external origin used in resource URLs and metadata. */
  readonly publicUrl: string;
  readonly server: Server;
  /** Applies a new (already validated) config to new requests; see startGateway. */
  reload(config: GatewayConfig): void;
  /**
   * A graceful stop (SIGTERM): readiness fails, after shutdown.drainDelay the listener stops
   * accepting, requests in flight get shutdown.gracePeriod, then SSE streams end cleanly.
   */
  shutdown(): Promise<void>;
  /** Stops at once: every connection is closed. */
  close(): Promise<void>;
  /**
   * For a process about to exit on a fatal error, synchronously: every request still in flight is
   * cut and closed, so its access line is written (`aborted`) before the exit, not lost with the
   * process.
   */
  interrupt(): void;
}

export interface GatewayOptions {
  readonly logger?: Logger;
  /** Reload status shown by readiness (the config watcher writes it). */
  readonly configHealth?: ConfigHealth;
  /**
   * A store made by the caller, used instead of the one `store` configures (tests size a memory
   * store's caps this way); the gateway closes it when it closes.
   */
  readonly store?: KeyValueStore;
  /**
   * Extra CA certificates (PEM) trusted when the authorization server fetches Client ID Metadata
   * Documents, for embedding (and tests) where NODE_EXTRA_CA_CERTS cannot be set.
   */
  readonly metadataDocumentCa?: string;
}

interface Serving {
  readonly app: HttpApp;
  readonly issuers: IssuerDirectory;
  readonly authorizationServer: AuthorizationServer | undefined;
  /** Every issuer whose tokens are accepted: the configured ones, and the gateway's own. */
  readonly trusted: readonly IssuerConfig[];
  readonly routes: readonly RouteRuntime[];
  readonly readiness: ReadinessSources;
}

interface Shared {
  readonly store: KeyValueStore;
  /** OpenTelemetry traces, made once at startup (tracing is restart-only); undefined when off. */
  readonly tracing: Tracing | undefined;
  readonly forwarder: Forwarder;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly lifecycle: Lifecycle;
  readonly identitySigner: IdentitySigner | undefined;
  /** Upstream credential sources (routes[].upstreamAuth), kept across reloads for unchanged routes. */
  readonly upstreamCredentials: UpstreamCredentials;
  readonly publicUrl: string;
  readonly configHealth: ConfigHealth | undefined;
  readonly authorizationServerMemory: AuthorizationServerMemory;
  readonly metadataDocumentCa: string | undefined;
}

/**
 * Everything a config decides, built from it: routes, policies, issuers, the HTTP app. Built
 * again on reload; the store, forwarder, metrics and listeners are shared. Issuers whose
 * settings did not change keep their directory, so a policy edit does not refetch keys; a new
 * timeouts.issuerDiscovery is a change (the directory holds the timeout for every later fetch).
 */
function buildServing(config: GatewayConfig, shared: Shared, previous?: { config: GatewayConfig; serving: Serving }): Serving {
  const { store, forwarder, logger, metrics, lifecycle, publicUrl, configHealth } = shared;
  const authorizationServer = buildAuthorizationServer({
    config,
    publicUrl,
    resources: config.routes.map((route) => ({ resource: `${publicUrl}${route.path}`, routeScopes: route.policy.routeScopes, scopesSupported: route.policy.scopesSupported })),
    store,
    logger,
    memory: shared.authorizationServerMemory,
    ...(previous?.serving.authorizationServer ? { previous: previous.serving.authorizationServer } : {}),
    ...(shared.metadataDocumentCa !== undefined ? { metadataDocumentCa: shared.metadataDocumentCa } : {}),
  });
  // The gateway trusts its own tokens without an issuers[] entry; listed first, so routes'
  // metadata names it first (MCP clients use the first authorization server).
  const trusted = authorizationServer ? [authorizationServer.selfIssuer(), ...config.issuers] : config.issuers;
  const sameIssuers =
    previous !== undefined &&
    previous.config.issuerDiscoveryTimeoutMs === config.issuerDiscoveryTimeoutMs &&
    JSON.stringify(previous.serving.trusted) === JSON.stringify(trusted);
  const issuers = sameIssuers
    ? previous.serving.issuers
    : new IssuerDirectory(trusted, config.issuerDiscoveryTimeoutMs, logger, undefined, (issuer, ok) => metrics.jwksFetched(issuer, ok));
  const routes = config.routes.map((route) => routeRuntime(route, publicUrl, trusted));
  // Before the pipelines are built: each route's pipeline takes its credential source.
  shared.upstreamCredentials.update(config.routes, config.issuerDiscoveryTimeoutMs, authorizationServer);
  const readiness: ReadinessSources = { issuers, store, draining: () => lifecycle.draining, ...(configHealth ? { configHealth } : {}) };
  const app = buildApp(config, routes, trusted, authorizationServer, {
    ...readiness,
    authenticator: new Authenticator(
      issuers,
      new VerifiedTokenCache(),
      store,
      trusted.flatMap((issuer) =>
        issuer.introspection ? [new Introspector(issuer, issuer.introspection, store, config.issuerDiscoveryTimeoutMs, logger)] : [],
      ),
    ),
    sessions: new SessionBindings(store, config.sessions),
    rateLimiter: new RateLimiter(store, logger),
    forwarder,
    logger,
    metrics,
    lifecycle,
    identitySigner: shared.identitySigner,
    upstreamCredentials: shared.upstreamCredentials,
    tracing: shared.tracing,
    checkOrigin: originChecker(publicUrl, config.allowedOrigins),
    maxBodyBytes: config.maxBodyBytes,
    upstreamResponseTimeoutMs: config.upstreamResponseTimeoutMs,
    upstreamConnectTimeoutMs: config.server.upstreamConnectTimeoutMs,
  });
  return { app, issuers, trusted, authorizationServer, routes, readiness };
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function urlOf(address: AddressInfo, scheme: 'http' | 'https'): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}

/**
 * Composition root: wires config into the store, issuers, forwarder and HTTP app, then listens.
 * The app is built after listening so that an omitted publicUrl can default to the real port.
 * `reload` swaps in a new config: new requests see it, requests in flight finish under the one
 * they started with (their handlers hold it).
 */
export async function startGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const { store, waitUntilReady } = options.store ? { store: options.store, waitUntilReady: async () => true } : await openStore(config.store, logger);
  const forwarder = new Forwarder();
  const upstreamCredentials = new UpstreamCredentials(store, logger);
  const lifecycle = new Lifecycle();
  const forwarded = new ForwardedHeaders(config.server.trustedProxies, config.server.tls !== undefined);

  let current: { config: GatewayConfig; serving: Serving } | undefined;
  const metrics = new GatewayMetrics({
    store,
    configHealth: options.configHealth,
    // Not ready before the first config is served, as /readyz would not be.
    ready: async () => current !== undefined && (await readinessReport(current.serving.readiness)).ready,
  });
  const server = createListener(config.server, requestListener({ lifecycle, logger, metrics, forwarded, app: () => current!.serving.app }));
  let admin: Server | undefined;
  let identitySigner: IdentitySigner | undefined;
  const tracing = config.tracing ? new Tracing(config.tracing, packageVersion()) : undefined;
  const closeAll = async () => {
    forwarder.close();
    upstreamCredentials.close();
    // Spans still batched are sent before the process goes.
    await Promise.all([store.close(), tracing?.shutdown()]);
  };
  // A start that fails after listening leaves nothing open: the store may hold a connection that
  // reconnects forever, and nothing else would close it.
  const abandon = async (error: unknown): Promise<never> => {
    server.close();
    admin?.close();
    await closeAll();
    throw error;
  };
  let address: AddressInfo;
  let adminUrl: string | undefined;
  try {
    address = await listen(server, config.listen.port, config.listen.host);
    if (config.server.admin) {
      const adminApp = buildAdminApp(metrics, () => current!.serving.readiness, () => identitySigner);
      admin = createListener({ ...config.server, tls: undefined }, getRequestListener(adminApp.fetch, { overrideGlobalObjects: false }));
      adminUrl = urlOf(await listen(admin, config.server.admin.port, config.server.admin.host), 'http');
    }
  } catch (error) {
    return abandon(error);
  }
  const url = urlOf(address, config.server.tls ? 'https' : 'http');
  const publicUrl = config.publicUrl ?? url;
  const needsSigner = config.routes.some((route) => route.identityHeaders.token !== undefined);
  try {
    identitySigner = needsSigner ? await IdentitySigner.create(config.identityToken, publicUrl) : undefined;
  } catch (error) {
    return abandon(error);
  }
  const shared: Shared = {
    store,
    tracing,
    forwarder,
    logger,
    metrics,
    lifecycle,
    identitySigner,
    upstreamCredentials,
    publicUrl,
    configHealth: options.configHealth,
    authorizationServerMemory: {},
    metadataDocumentCa: options.metadataDocumentCa,
  };

  current = { config, serving: buildServing(config, shared) };
  // Wait briefly for keys and the store so the first requests need not fail; never forever:
  // readiness reports what is still missing, and both recover on their own.
  const [issuersReady, storeReady] = await Promise.all([current.serving.issuers.warmUp(), waitUntilReady()]);
  const routes = current.serving.routes;
  const authorizationServer = current.serving.authorizationServer?.issuer;
  logger.info({ url, adminUrl, publicUrl, routes: routes.map((r) => r.resource), issuersReady, storeReady, store: config.store.type, ...(authorizationServer ? { authorizationServer } : {}) }, 'gateway listening');

  let stopping: Promise<void> | undefined;
  return {
    url,
    adminUrl,
    publicUrl,
    server,
    reload(next: GatewayConfig) {
      const { config: applied, keptAsStarted } = settleReload(config, next);
      if (keptAsStarted.length > 0) {
        logger.warn({ event: 'reload', restartOnly: keptAsStarted }, `${keptAsStarted.join(', ')} change only on restart: kept as started; the rest of the new config is applied`);
      }
      if (!identitySigner && applied.routes.some((route) => route.identityHeaders.token !== undefined)) {
        logger.warn({ event: 'reload' }, 'identity tokens were not enabled at startup: restart to send them');
      }
      current = { config: applied, serving: buildServing(applied, shared, current) };
      void current.serving.issuers.warmUp();
    },
    shutdown() {
      stopping ??= (async () => {
        logger.info({ event: 'shutdown', drainDelayMs: config.server.drainDelayMs, gracePeriodMs: config.server.gracePeriodMs, inFlight: lifecycle.requestsInFlight }, 'shutting down: readiness fails, in-flight requests may finish');
        await lifecycle.stop(server, config.server);
        await closeAdmin(admin);
        await closeAll();
        logger.info({ event: 'shutdown' }, 'stopped');
      })();
      return stopping;
    },
    interrupt() {
      // 'close' now, by hand: the one the destroyed socket will emit comes a turn too late.
      for (const res of lifecycle.openResponses()) res.destroy().emit('close');
    },
    async close() {
      lifecycle.beginDrain();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await closeAdmin(admin);
      await closeAll();
    },
  };
}

function closeAdmin(admin: Server | undefined): Promise<void> {
  if (!admin) return Promise.resolve();
  return new Promise((resolve) => {
    admin.close(() => resolve());
    admin.closeAllConnections();
  });
}
