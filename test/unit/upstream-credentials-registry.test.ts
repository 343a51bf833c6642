import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { MemoryStore } from '../../src/store/memory.js';
import { UpstreamCredentials } from '../../src/upstream-auth/registry.js';

/** Across reloads a route whose upstreamAuth did not change keeps its source (cached exchanges, file watch). */
describe('UpstreamCredentials', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-upauth-registry-'));
    await writeFile(join(dir, 'key'), 'k');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const route = (name: string, upstreamAuth?: RouteConfig['upstreamAuth']) => ({ name, ...(upstreamAuth ? { upstreamAuth } : {}) }) as RouteConfig;
  const exchange = (audience: string): RouteConfig['upstreamAuth'] => ({
    mode: 'tokenExchange', preset: 'rfc8693', issuer: 'https://idp.example.com', clientId: 'gw', clientAuth: { method: 'client_secret_basic', secret: 's' }, audience, scopes: [], files: [],
  });

  it('keeps an unchanged source, makes a changed one anew, and forgets a removed one', () => {
    const registry = new UpstreamCredentials(new MemoryStore(), createLogger('silent'));
    const staticAuth: RouteConfig['upstreamAuth'] = { mode: 'static', header: 'x-api-key', valueFile: join(dir, 'key'), prefix: '' };
    registry.update([route('a', exchange('one')), route('b', staticAuth), route('plain')], 1_000);
    const a = registry.sourceFor(route('a', exchange('one')));
    const b = registry.sourceFor(route('b', staticAuth));
    expect(a?.mode).toBe('tokenExchange');
    expect(b?.mode).toBe('static');
    expect(registry.sourceFor(route('plain'))).toBeUndefined();

    registry.update([route('a', exchange('one')), route('b', staticAuth)], 1_000);
    expect(registry.sourceFor(route('a', exchange('one')))).toBe(a);
    expect(registry.sourceFor(route('b', staticAuth))).toBe(b);

    registry.update([route('a', exchange('two'))], 1_000);
    expect(registry.sourceFor(route('a', exchange('two')))).not.toBe(a);
    expect(registry.sourceFor(route('b', staticAuth))).toBeUndefined();
    // A new timeout is a change too (the exchange holds it).
    const two = registry.sourceFor(route('a', exchange('two')));
    registry.update([route('a', exchange('two'))], 2_000);
    expect(registry.sourceFor(route('a', exchange('two')))).not.toBe(two);
    registry.close();
    expect(registry.sourceFor(route('a', exchange('two')))).toBeUndefined();
  });
});
