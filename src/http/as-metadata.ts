import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { fetchIssuerMetadata, type FetchedMetadata } from '../auth/discovery.js';
import type { AuthorizationServerMetadataCompat } from '../config/types.js';
import type { Logger } from '../observability/logger.js';

/** RFC 8414 §3 at the root of this origin: where 2025-03-26 clients look for it. */
export const AS_METADATA_PATH = '/.well-known/oauth-authorization-server';
/** A served copy is refreshed after this long; the last good copy stays if the refresh fails. */
const REFRESH_MS = 5 * 60_000;

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
  let cached: { metadata: FetchedMetadata; fetchedAt: number } | undefined;
  let refreshing: Promise<FetchedMetadata> | undefined;

  const metadata = async (): Promise<FetchedMetadata | undefined> => {
    if (cached && Date.now() - cached.fetchedAt < REFRESH_MS) return cached.metadata;
    refreshing ??= fetchIssuerMetadata(compat.issuer, timeoutMs).finally(() => (refreshing = undefined));
    try {
      const fresh = await refreshing;
      cached = { metadata: fresh, fetchedAt: Date.now() };
      return fresh;
    } catch (error) {
      logger.warn({ issuer: compat.issuer, err: (error as Error).message }, 'authorization server metadata unavailable');
      return cached?.metadata;
    }
  };

  app.on(['GET', 'HEAD'], AS_METADATA_PATH, async () => {
    const found = await metadata();
    const headers = { 'access-control-allow-origin': '*', 'cache-control': 'public, max-age=300' };
    if (!found) return Response.json({ error: 'temporarily_unavailable' }, { status: 503, headers: { ...headers, 'retry-after': '5', 'cache-control': 'no-store' } });
    if (compat.mode === 'redirect') return new Response(null, { status: 302, headers: { ...headers, location: found.url.href } });
    return Response.json(found.document, { headers });
  });
  app.options(AS_METADATA_PATH, () => new Response(null, { status: 204, headers: { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, HEAD, OPTIONS', 'access-control-max-age': '86400' } }));
}
