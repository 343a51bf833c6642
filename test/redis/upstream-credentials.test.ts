import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discover, obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startCredentialUpstream, type CredentialUpstream } from '../support/credential-upstream.js';
import { deleteKeys, REDIS_URL, uniqueKeyPrefix } from '../support/redis.js';
import { IDP_SCOPES } from '../support/stack.js';
import { callTool, startUpstreamAuthGateway, type UpstreamAuthGateway } from '../support/upstream-auth-gateway.js';

/**
 * Issue 26: replicas share exchanged credentials through Redis, sealed (JWE dir + A256GCM under
 * upstreamAuth.tokenExchange.cacheKeyFile): a principal's token exchanged by one replica is used
 * by the other without asking the IdP again, and Redis never holds a usable credential.
 */
const prefix = uniqueKeyPrefix('upstream-credentials');
const inspector = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });

describe('token exchange across replicas', () => {
  let idp: DevIdp;
  let upstream: CredentialUpstream;
  const replicas: UpstreamAuthGateway[] = [];
  const cacheKey = randomBytes(32).toString('base64');

  const replica = (key: string) =>
    startUpstreamAuthGateway({
      issuer: idp.issuer,
      upstreamUrl: upstream.url,
      store: `{ type: redis, url: "${REDIS_URL}", keyPrefix: "${prefix}" }`,
      upstreamAuth: '      tokenExchange: { clientId: gateway, clientSecretFile: client-secret, audience: upstream-api, cacheKeyFile: cache-key }',
      files: { 'client-secret': 'secret', 'cache-key': `${key}\n` },
    });

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: IDP_SCOPES, tokenExchange: { clients: [{ clientId: 'gateway', clientSecret: 'secret' }] } });
    upstream = await startCredentialUpstream({ kind: 'jwt', jwksUri: (await discover(idp)).jwks_uri, issuer: idp.issuer, audiences: ['upstream-api'] });
    replicas.push(await replica(cacheKey), await replica(cacheKey), await replica(randomBytes(32).toString('base64')));
  });
  afterAll(async () => {
    for (const gw of replicas) await gw.close();
    await upstream?.close();
    await idp?.close();
    inspector.disconnect();
    await deleteKeys(REDIS_URL, prefix);
  });

  it('uses on one replica the credential another exchanged, and keeps it sealed in Redis', async () => {
    const [one, two, stranger] = replicas as [UpstreamAuthGateway, UpstreamAuthGateway, UpstreamAuthGateway];
    const first = await obtainAccessToken(idp, { resource: one.mcpUrl, scope: 'todo:read', subject: 'alice' });
    expect((await callTool(one.mcpUrl, first.accessToken)).status).toBe(200);
    expect(idp.exchange.calls).toHaveLength(1);
    const exchanged = idp.exchange.calls[0]!.accessToken!;

    // The same principal (issuer, subject, client) on the other replica, with a token for it.
    const second = await obtainAccessToken(idp, { resource: two.mcpUrl, scope: 'todo:read', subject: 'alice', clientId: first.clientId });
    expect((await callTool(two.mcpUrl, second.accessToken)).status).toBe(200);
    expect(idp.exchange.calls).toHaveLength(1);
    expect(upstream.received.map((r) => r.credential)).toEqual([`Bearer ${exchanged}`, `Bearer ${exchanged}`]);

    const keys = await inspector.keys(`${prefix}upstream-credential:*`);
    expect(keys).toHaveLength(1);
    const sealed = (await inspector.get(keys[0]!))!;
    expect(decodeProtectedHeader(sealed)).toEqual({ alg: 'dir', enc: 'A256GCM' });
    expect(sealed).not.toContain(exchanged.split('.')[1]!);
    expect(keys[0]).not.toContain('alice');
    expect(await inspector.pttl(keys[0]!)).toBeGreaterThan(0);

    // Negative control: a replica with another key cannot read it, and exchanges on its own.
    const third = await obtainAccessToken(idp, { resource: stranger.mcpUrl, scope: 'todo:read', subject: 'alice', clientId: first.clientId });
    expect((await callTool(stranger.mcpUrl, third.accessToken)).status).toBe(200);
    expect(idp.exchange.calls).toHaveLength(2);
  });
});
