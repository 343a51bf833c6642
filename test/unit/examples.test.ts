import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/load.js';

/** The files users copy from must load, and say what the README says they do. */
describe('shipped examples', () => {
  it('gateway.example.yaml and its policy load, with the documented rate limits', async () => {
    const config = await loadConfig('gateway.example.yaml');
    expect(config.store).toEqual({ type: 'memory' });
    const policy = config.routes[0]!.policy;
    expect(policy.routeRateLimit).toEqual({ id: 'rateLimit', requests: 600, periodMs: 60_000, by: 'subject' });
    expect(policy.exactTools.get('add_todo')?.rateLimit).toMatchObject({ requests: 30, by: 'client' });
    expect(policy.globTools[0]?.rateLimit).toMatchObject({ requests: 10, periodMs: 3_600_000 });
  });

  it('gateway.facade.example.yaml (npm run demo:facade) loads: the gateway as authorization server in front of Entra, grants from a groups claim', async () => {
    const config = await loadConfig('gateway.facade.example.yaml');
    expect(config.issuers).toEqual([]);
    const as = config.authorizationServer!;
    expect(as.upstream).toMatchObject({ preset: 'entra', clientId: 'mcp-gateway', subjectClaim: 'oid' });
    expect(as.upstream.scopes).toContain('offline_access');
    expect(as.registration).toMatchObject({ dynamic: true, metadataDocuments: true, allowPrivateNetworks: false });
    expect(as.grants).toEqual([{ scopes: ['todo:read', 'todo:write'] }, { scopes: ['todo:admin'], when: { claims: { groups: 'ops' } } }]);
    // Its policy asks for scopes only: the gateway's tokens carry no IdP claims to test.
    const policy = config.routes[0]!.policy;
    expect(policy.globTools[0]?.when).toBeUndefined();
    expect(policy.scopesSupported).toEqual(expect.arrayContaining(['todo:read', 'todo:write', 'todo:admin']));
  });

  it("gateway.example.yaml's commented Redis settings load once uncommented (TLS files aside)", async () => {
    const text = await readFile('gateway.example.yaml', 'utf8');
    const redis = text
      .replace(/^ {2}type: memory\n/m, '')
      .replace(/^ {2}# (type|url|keyPrefix|username|commandTimeout|connectTimeout):/gm, '  $1:')
      .replace(/^ {4}# onStoreError:/m, '    onStoreError:');
    const config = await parseConfig(resolve('gateway.example.yaml'), redis);
    expect(config.store).toMatchObject({ type: 'redis', url: 'rediss://redis.internal:6380/0', keyPrefix: 'mcp-auth-gateway:', username: 'gateway', commandTimeoutMs: 500 });
    expect(config.routes[0]!.onStoreError).toBe('deny');
  });
});
