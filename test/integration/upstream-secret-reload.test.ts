import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { GatewayConfig, TokenExchangeUpstreamAuth } from '../../src/config/types.js';
import { watchConfig } from '../../src/config/watch.js';
import { minimalConfig } from '../support/config-fixtures.js';
import { captureLogs } from '../support/log-capture.js';
import { waitFor } from '../support/timing.js';

/**
 * A token exchange's client secret (a mounted Secret, rotated in place) is read at load: the
 * config watcher watches its file like the config's own, so a rotation is taken up by a reload
 * without a restart (issue 26).
 */
describe('a rotated token-exchange secret', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-secret-reload-'));
    await mkdir(join(dir, 'policies'));
    await mkdir(join(dir, 'secrets'));
    await writeFile(join(dir, 'policies', 'todo.yaml'), 'scopes: [todo:read]\n');
    await writeFile(join(dir, 'secrets', 'client-secret'), 'secret-one\n');
    await writeFile(join(dir, 'gateway.yaml'), minimalConfig({ routeExtra: '    upstreamAuth:\n      tokenExchange: { clientId: gw, clientSecretFile: secrets/client-secret }\n' }));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const secretOf = (config: GatewayConfig) => {
    const auth = config.routes[0]!.upstreamAuth as TokenExchangeUpstreamAuth;
    return auth.clientAuth.method === 'private_key_jwt' ? undefined : auth.clientAuth.secret;
  };

  it('reloads the config when the secret file changes, with the new secret', async () => {
    const file = join(dir, 'gateway.yaml');
    const initial = await loadConfig(file);
    expect(secretOf(initial)).toBe('secret-one');
    const applied: GatewayConfig[] = [];
    const watcher = await watchConfig(file, initial, (config) => applied.push(config), captureLogs().logger, {});
    try {
      await writeFile(join(dir, 'secrets', 'client-secret'), 'secret-two\n');
      await waitFor('the reload', async () => applied.length > 0, 3_000);
      expect(secretOf(applied.at(-1)!)).toBe('secret-two');
    } finally {
      watcher.close();
    }
  });
});
