import type { IssuerDirectory } from '../auth/issuers.js';
import type { ConfigHealth } from '../config/watch.js';
import type { KeyValueStore } from '../store/types.js';

export interface ReadinessSources {
  readonly issuers: IssuerDirectory;
  readonly store: KeyValueStore;
  /** Set when the newest config files were refused on reload (the last good config serves on). */
  readonly configHealth?: ConfigHealth;
  /** True from SIGTERM on: the replica is leaving, send it nothing new. */
  readonly draining?: () => boolean;
}

/**
 * `GET /readyz`: ready only when a config is loaded (it is, or nothing would be serving; a
 * refused reload is reported in the details),
 * every issuer's keys were fetched, and the store answers. 503 otherwise, with the failing
 * check named, so a Kubernetes readiness probe takes the replica out of the Service while Redis
 * is unreachable and puts it back once it answers. Details carry no secrets.
 */
export async function readiness(sources: ReadinessSources): Promise<Response> {
  const { ready, body } = await readinessReport(sources);
  return Response.json(body, { status: ready ? 200 : 503, headers: { 'cache-control': 'no-store' } });
}

/** What /readyz answers, before it is a Response: metrics export the same verdict. */
export async function readinessReport(sources: ReadinessSources): Promise<{ ready: boolean; body: Record<string, unknown> }> {
  if (sources.draining?.()) return { ready: false, body: { status: 'shutting down' } };
  const [issuers, store] = await Promise.all([
    sources.issuers.readiness(),
    sources.store.ping().then(
      () => 'ok' as const,
      () => 'unavailable' as const,
    ),
  ]);
  const issuersReady = Object.values(issuers).every(Boolean);
  const ready = issuersReady && store === 'ok';
  const body = {
    status: ready ? 'ready' : 'not ready',
    checks: {
      // A refused reload does not make the replica unready: the last good config is in force.
      config: sources.configHealth?.refused ? { status: 'last reload refused', ...sources.configHealth.refused } : 'ok',
      issuers: Object.fromEntries(Object.entries(issuers).map(([iss, ok]) => [iss, ok ? 'ok' : 'keys not fetched'])),
      store,
    },
  };
  return { ready, body };
}
