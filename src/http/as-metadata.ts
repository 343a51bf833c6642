import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { fetchIssuerMetadata, type FetchedMetadata } from '../auth/discovery.js';
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
  let cached: FetchedMetadata | undefined;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let attemptedAt = Number.NEGATIVE_INFINITY;
  let refreshing: Promise<void> | undefined;
  let failing = false;

  /** One fetch at a time, at most one attempt per RETRY_MS while failing, logged once per streak. */
  const refresh = (): Promise<void> => {
    if (refreshing) return refreshing;
    if (Date.now() - attemptedAt < RETRY_MS) return Promise.resolve();
    attemptedAt = Date.now();
    refreshing = fetchIssuerMetadata(compat.issuer, timeoutMs)
      .then(
        (fresh) => {
          cached = fresh;
          fetchedAt = Date.now();
          failing = false;
        },
        (error: Error) => {
          if (!failing) logger.warn({ issuer: compat.issuer, err: error.message }, 'authorization server metadata unavailable');
          failing = true;
        },
      )
      .finally(() => (refreshing = undefined));
    return refreshing;
  };

  /** A stale copy is served at once while a refresh runs behind it; only a first fetch is awaited. */
  const metadata = async (): Promise<FetchedMetadata | undefined> => {
    if (Date.now() - fetchedAt >= REFRESH_MS) {
      const pending = refresh();
      if (!cached) await pending;
    }
    return cached;
  };

  app.on(['GET', 'HEAD'], AS_METADATA_PATH, async () => {
    const found = await metadata();
    const headers = { 'access-control-allow-origin': '*', 'cache-control': 'public, max-age=300' };
    if (!found) return Response.json({ error: 'temporarily_unavailable' }, { status: 503, headers: { ...headers, 'retry-after': '5', 'cache-control': 'no-store' } });
    if (compat.mode === 'redirect') return new Response(null, { status: 302, headers: { ...headers, location: found.url.href } });
    return Response.json(found.document, { headers });
  });
  app.options(AS_METADATA_PATH, () => new Response(null, { status: 204, headers: CORS_HEADERS }));
}
