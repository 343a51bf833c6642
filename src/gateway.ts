import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { Authenticator } from './auth/authenticate.js';
import { Introspector } from './auth/introspection.js';
import { IssuerDirectory } from './auth/issuers.js';
import { VerifiedTokenCache } from './auth/token-cache.js';
import type { GatewayConfig } from './config/types.js';
import type { ConfigHealth } from './config/watch.js';
import { buildApp } from './http/app.js';
import { originChecker } from './http/origin.js';
import { routeRuntime, type RouteRuntime } from './http/routes.js';
import { SessionBindings } from './mcp/sessions.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Forwarder } from './proxy/forward.js';
import { RateLimiter } from './ratelimit/limiter.js';
import { openStore } from './store/index.js';
import type { KeyValueStore } from './store/types.js';

export interface Gateway {
  /** Where the gateway listens, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** The external origin used in resource URLs and metadata. */
  readonly publicUrl: string;
  readonly server: Server;
  /** Applies a new (already validated) config to new requests; see startGateway. */
  reload(config: GatewayConfig): void;
  close(): Promise<void>;
}

export interface GatewayOptions {
  readonly logger?: Logger;
  /** Reload status shown by readiness (the config watcher writes it). */
  readonly configHealth?: ConfigHealth;
}

/** What a reload keeps: changing these needs a restart (they are bound at startup). */
function restartOnlyFields(config: GatewayConfig): string {
  return JSON.stringify([config.listen, config.publicUrl, config.store, config.logLevel]);
}

interface Serving {
  readonly app: Hono<{ Bindings: HttpBindings }>;
  readonly issuers: IssuerDirectory;
  readonly routes: readonly RouteRuntime[];
}

interface Shared {
  readonly store: KeyValueStore;
  readonly forwarder: Forwarder;
  readonly logger: Logger;
  readonly publicUrl: string;
  readonly configHealth: ConfigHealth | undefined;
}

/**
 * Everything a config decides, built from it: routes, policies, issuers, the HTTP app. Built
 * again on reload; the store, forwarder and listener are shared. Issuers whose settings did not
 * change keep their directory, so a policy edit does not refetch keys.
 */
function buildServing(config: GatewayConfig, shared: Shared, previous?: { config: GatewayConfig; serving: Serving }): Serving {
  const { store, forwarder, logger, publicUrl, configHealth } = shared;
  const sameIssuers = previous !== undefined && JSON.stringify(previous.config.issuers) === JSON.stringify(config.issuers);
  const issuers = sameIssuers ? previous.serving.issuers : new IssuerDirectory(config.issuers, config.issuerDiscoveryTimeoutMs, logger);
  const routes = config.routes.map((route) => routeRuntime(route, publicUrl, config.issuers));
  const app = buildApp(config, routes, {
    issuers,
    store,
    ...(configHealth ? { configHealth } : {}),
    authenticator: new Authenticator(
      issuers,
      new VerifiedTokenCache(),
      store,
      config.issuers.flatMap((issuer) =>
        issuer.introspection ? [new Introspector(issuer, issuer.introspection, store, config.issuerDiscoveryTimeoutMs, logger)] : [],
      ),
    ),
    sessions: new SessionBindings(store, config.sessions),
    rateLimiter: new RateLimiter(store, logger),
    forwarder,
    logger,
    checkOrigin: originChecker(publicUrl, config.allowedOrigins),
    maxBodyBytes: config.maxBodyBytes,
    upstreamResponseTimeoutMs: config.upstreamResponseTimeoutMs,
  });
  return { app, issuers, routes };
}

/**
 * Composition root: wires config into the store, issuers, forwarder and HTTP app, then listens.
 * The app is built after listening so that an omitted publicUrl can default to the real port.
 * `reload` swaps in a new config: new requests see it, requests in flight finish under the one
 * they started with (their handlers hold it).
 */
export async function startGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const { store, waitUntilReady } = openStore(config.store, logger);
  const forwarder = new Forwarder();

  let current: { config: GatewayConfig; serving: Serving } | undefined;
  const server = createAdaptorServer({
    fetch: (request, env) => current!.serving.app.fetch(request, env as HttpBindings),
    overrideGlobalObjects: false,
  }) as Server;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.listen.port, config.listen.host, () => resolve());
    });
  } catch (error) {
    // The store may hold a connection that reconnects forever: nothing else would close it.
    await store.close();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  const publicUrl = config.publicUrl ?? url;
  const shared: Shared = { store, forwarder, logger, publicUrl, configHealth: options.configHealth };

  current = { config, serving: buildServing(config, shared) };
  // Wait briefly for keys and the store so the first requests need not fail; never forever:
  // readiness reports what is still missing, and both recover on their own.
  const [issuersReady, storeReady] = await Promise.all([current.serving.issuers.warmUp(), waitUntilReady()]);
  const routes = current.serving.routes;
  logger.info({ url, publicUrl, routes: routes.map((r) => r.resource), issuersReady, storeReady, store: config.store.type }, 'gateway listening');

  return {
    url,
    publicUrl,
    server,
    reload(next: GatewayConfig) {
      if (restartOnlyFields(next) !== restartOnlyFields(current!.config)) {
        logger.warn({ event: 'reload' }, 'listen, publicUrl, store and log settings change only on restart; the rest of the new config is applied');
      }
      // Those fields stay as started; everything else comes from the new config.
      const applied: GatewayConfig = { ...next, listen: config.listen, publicUrl: config.publicUrl, store: config.store, logLevel: config.logLevel };
      current = { config: applied, serving: buildServing(applied, shared, current) };
      void current.serving.issuers.warmUp();
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      forwarder.close();
      await store.close();
    },
  };
}
