import { Hono } from 'hono';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { IdentitySigner } from '../proxy/identity.js';
import { IDENTITY_JWKS_PATH } from '../proxy/identity.js';
import { readiness, type ReadinessSources } from './readiness.js';

/**
 * The admin listener: what operators and the platform ask, kept off the public one. Prometheus
 * metrics, liveness, readiness, and the identity-token keys for upstreams in the same Pod.
 * `sources` is read per request, so a reload's new issuers are what readiness reports.
 */
export function buildAdminApp(metrics: GatewayMetrics, sources: () => ReadinessSources, identitySigner: () => IdentitySigner | undefined): Hono {
  const app = new Hono({ strict: true });
  app.get('/metrics', async () => {
    const { body, contentType } = await metrics.exposition();
    return new Response(body, { headers: { 'content-type': contentType, 'cache-control': 'no-store' } });
  });
  app.get('/healthz', () => Response.json({ status: 'ok' }));
  app.get('/readyz', () => readiness(sources()));
  app.get(IDENTITY_JWKS_PATH, () => {
    const signer = identitySigner();
    return signer ? Response.json(signer.jwks) : Response.json({ error: 'not_found' }, { status: 404 });
  });
  app.notFound(() => Response.json({ error: 'not_found' }, { status: 404 }));
  return app;
}
