import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { fetchIssuerMetadata, type FetchedMetadata } from '../auth/discovery.js';
import { RefreshingValue } from '../cache/refreshing-value.js';
import type { AuthorizationServerMetadataCompat } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { CORS_HEADERS } from './metadata.js';

/** RFC 8414 §3 at the root of this origin: where 2025-03-26 clients look for it. */
export const AS_METADATA_PATH = '/.well-known/oauth-authorization-server';
/** A served copy is refreshed after this long; the last good copy stays if the refresh fails. */
const REFRESH_MS = 5 * 60_000;
/** While the issuer fails, it is asked again at most this often. */
const RETRY_MS = 5_000;

/**
 * Compatibility for MCP clients of the 2025-03-26 specification, which look for the
 * authorization server's metadata on the MCP server's own origin (2025-03-26 authorization
 * §2.3.2 Server Metadata Discovery) instead of following RFC 9728. Opt-in: `redirect` sends them
 * to the issuer's own document; `serve` serves a copy (for clients that do not follow
 * redirects), CORS-readable like the resource metadata.
 */
export function mountAuthorizationServerMetadata(
  app: Hono<{ Bindings: HttpBindings }>,
  compat: AuthorizationServerMetadataCompat,
  timeoutMs: number,
  logger: Logger,
): void {
  // A stale copy is served at once while a refresh runs behind it; only a first fetch is awaited.
  const metadata = new RefreshingValue<FetchedMetadata>({
    load: () => fetchIssuerMetadata(compat.issuer, timeoutMs),
    maxAgeMs: REFRESH_MS,
    retryMs: RETRY_MS,
    onFailure: (error, failuresInARow) => {
      if (failuresInARow === 1) logger.warn({ issuer: compat.issuer, err: (error as Error).message }, 'authorization server metadata unavailable');
    },
  });

  app.on(['GET', 'HEAD'], AS_METADATA_PATH, async () => {
    const found = await metadata.get();
    const headers = { 'access-control-allow-origin': '*', 'cache-control': 'public, max-age=300' };
    if (!found) return Response.json({ error: 'temporarily_unavailable' }, { status: 503, headers: { ...headers, 'retry-after': '5', 'cache-control': 'no-store' } });
    if (compat.mode === 'redirect') return new Response(null, { status: 302, headers: { ...headers, location: found.url.href } });
    return Response.json(found.document, { headers });
  });
  app.options(AS_METADATA_PATH, () => new Response(null, { status: 204, headers: CORS_HEADERS }));
}
