import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { Authenticator } from './auth/authenticate.js';
import { Introspector } from './auth/introspection.js';
import { IssuerDirectory } from './auth/issuers.js';
import { VerifiedTokenCache } from './auth/token-cache.js';
import type { GatewayConfig } from './config/types.js';
import { buildApp } from './http/app.js';
import { originChecker } from './http/origin.js';
import { routeRuntime } from './http/routes.js';
import { SessionBindings } from './mcp/sessions.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Forwarder } from './proxy/forward.js';
import { RateLimiter } from './ratelimit/limiter.js';
import { openStore } from './store/index.js';

export interface Gateway {
  /** Where the gateway listens, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** The external origin used in resource URLs and metadata. */
  readonly publicUrl: string;
  readonly server: Server;
  close(): Promise<void>;
}

export interface GatewayOptions {
  readonly logger?: Logger;
}

/**
 * Composition root: wires config into the store, issuers, forwarder and HTTP app, then listens.
 * The app is built after listening so that an omitted publicUrl can default to the real port.
 */
export async function startGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const { store, waitUntilReady } = openStore(config.store, logger);
  const issuers = new IssuerDirectory(config.issuers, config.issuerDiscoveryTimeoutMs, logger);
  const forwarder = new Forwarder();

  let app: Hono<{ Bindings: HttpBindings }> | undefined;
  const server = createAdaptorServer({
    fetch: (request, env) => app!.fetch(request, env as HttpBindings),
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

  const routes = config.routes.map((route) => routeRuntime(route, publicUrl, config.issuers));
  app = buildApp(config, routes, {
    issuers,
    store,
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
  // Wait briefly for keys and the store so the first requests need not fail; never forever:
  // readiness reports what is still missing, and both recover on their own.
  const [issuersReady, storeReady] = await Promise.all([issuers.warmUp(), waitUntilReady()]);
  logger.info({ url, publicUrl, routes: routes.map((r) => r.resource), issuersReady, storeReady, store: config.store.type }, 'gateway listening');

  return {
    url,
    publicUrl,
    server,
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
