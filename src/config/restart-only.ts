import type { GatewayConfig, ServerConfig } from './types.js';

/**
 * For every field of the loaded config, the config key whose change needs a restart, or null
 * when a reload applies it to new requests. Restart-only settings are bound once at startup:
 * by the listeners (Node reads maxHeaderSize, the head and request deadlines and the interval
 * that checks them when the server is made), the store, the logger, the identity signer, or the
 * public origin the signer and resource URLs were built on. The rest is read per request from
 * the config in force: the body limit, the upstream connect and response deadlines (the shared
 * agents take the connect deadline per new connection), the issuer fetch timeout (issuers are
 * rebuilt when it changes). Both maps name every field (the types say so), so a new field cannot
 * go unclassified.
 *
 * The authorization server is reloadable key by key, on purpose: its signing key file is read
 * again (rotation needs no restart), its upstream IdP client is rebuilt when its settings change,
 * and registration, clients, token lifetimes, consent and grants are read per request. Its state
 * lives in the store, so a reload loses no pending login, code, consent or refresh token. Its
 * issuer may change too (as an issuers[] entry may): tokens it issued before stop being accepted.
 * Only the key generated when no signingKeys file is given is bound to the process.
 *
 * routes[].upstreamAuth is reloadable in every mode: each route's credential source is rebuilt
 * when its section changes and kept (with what it holds in memory) when not, and every source
 * reads the facade of the config in force, so a new token encryption key or a new provider
 * secret applies at once. What idpToken and connectedAccount keep for users lives in the store
 * and outlives a reload (with a new token encryption key it no longer opens: users sign in or
 * connect again).
 */
const TOP_LEVEL: { readonly [K in Exclude<keyof GatewayConfig, 'server'>]-?: string | null } = {
  file: null,
  listen: 'listen',
  publicUrl: 'publicUrl',
  store: 'store',
  logLevel: 'log',
  tracing: 'tracing',
  identityToken: 'identityToken',
  sessions: null,
  allowedOrigins: null,
  maxBodyBytes: null,
  upstreamResponseTimeoutMs: null,
  issuerDiscoveryTimeoutMs: null,
  issuers: null,
  authorizationServerMetadata: null,
  authorizationServer: null,
  routes: null,
};

const LISTENER: { readonly [K in keyof ServerConfig]-?: string | null } = {
  tls: 'tls',
  admin: 'admin',
  trustedProxies: 'trustedProxies',
  drainDelayMs: 'shutdown',
  gracePeriodMs: 'shutdown',
  maxHeaderBytes: 'limits.maxHeaderBytes',
  maxHeaders: 'limits.maxHeaders',
  maxConnections: 'limits.maxConnections',
  headersTimeoutMs: 'timeouts.headers',
  requestTimeoutMs: 'timeouts.request',
  idleTimeoutMs: 'timeouts.idle',
  upstreamConnectTimeoutMs: null,
};

/** The config keys (as written in the file) that change only on restart; docs/operations.md's "Hot reload" lists the same. */
export const RESTART_ONLY_KEYS: readonly string[] = [
  ...new Set([...Object.values(TOP_LEVEL), ...Object.values(LISTENER)].filter((key) => key !== null)),
];

/**
 * What a reload puts in force: `next`, except that every restart-only setting stays as
 * `started` has it; and which restart-only keys `next` would have changed (for the warning).
 */
export function settleReload(started: GatewayConfig, next: GatewayConfig): { config: GatewayConfig; keptAsStarted: string[] } {
  const kept = new Set<string>();
  const keep = (fields: Readonly<Record<string, string | null>>, from: object, onto: object): Record<string, unknown> => {
    const was: Record<string, unknown> = { ...from };
    const result: Record<string, unknown> = { ...onto };
    for (const [field, key] of Object.entries(fields)) {
      if (key === null) continue;
      if (JSON.stringify(was[field]) !== JSON.stringify(result[field])) kept.add(key);
      // Absent stays absent: `tls` or `admin` given only in the new file must not appear.
      if (field in was) result[field] = was[field];
      else delete result[field];
    }
    return result;
  };
  const server = keep(LISTENER, started.server, next.server) as unknown as ServerConfig;
  const config = { ...keep(TOP_LEVEL, started, next), server } as unknown as GatewayConfig;
  return { config, keptAsStarted: RESTART_ONLY_KEYS.filter((key) => kept.has(key)) };
}
