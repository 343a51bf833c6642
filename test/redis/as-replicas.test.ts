import { Redis } from 'ioredis';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/as-browser.js';
import { authorizationUrl, CLIENT_REDIRECT, codeOf, pkcePair, registerClient, tokenRequest } from '../support/as-client.js';
import { startAsShared, startAsStack, type AsShared, type AsStack } from '../support/as-stack.js';
import { initializeRequest, mcpRequest } from '../support/mcp-http.js';
import { deleteKeys, REDIS_URL, uniqueKeyPrefix } from '../support/redis.js';

/** Replicas behind one load balancer share this origin: the issuer, the callback and the resource. */
const PUBLIC_URL = 'http://localhost:8443';

/**
 * Issue 25 item 6: two replicas of the gateway on one real Redis, sharing a signing key file, one
 * public origin in front of them. Every request of a flow goes to the other replica than the one
 * before (a round-robin balancer): registration, authorization, the IdP's callback, the consent
 * page and its post, the token, the MCP request, refresh and reuse detection all work as if
 * there were one gateway, because all their state is in the store.
 */
describe('authorization server across two replicas on one Redis', () => {
  const prefix = uniqueKeyPrefix('as-replicas');
  const inspector = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  let shared: AsShared;
  let a: AsStack;
  let b: AsStack;
  const served: string[] = [];

  beforeAll(async () => {
    shared = await startAsShared();
    const options = { shared, store: `store: { type: redis, url: ${REDIS_URL}, keyPrefix: "${prefix}" }`, extraConfig: `publicUrl: ${PUBLIC_URL}` };
    a = await startAsStack(options);
    b = await startAsStack(options);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await shared?.close();
    inspector.disconnect();
    await deleteKeys(REDIS_URL, prefix);
  });

  /** The balancer: each request to the public origin goes to the replica the last one did not. */
  const balance = (url: URL): URL => {
    if (url.origin !== PUBLIC_URL) return url;
    const replica = served.length % 2 === 0 ? a : b;
    served.push(replica === a ? 'a' : 'b');
    return new URL(`${url.pathname}${url.search}`, replica.gateway.url);
  };

  it('a flow started on one replica finishes on the other, and the token works on both', async () => {
    const clientId = await registerClient(a.gateway.url);
    const { challenge, verifier } = pkcePair();
    const browser = new TestBrowser({ subject: 'alice', route: balance });
    const { outcome, consentShown } = await browser.authorize(authorizationUrl(PUBLIC_URL, { clientId, challenge, resource: `${PUBLIC_URL}/mcp`, scope: 'todo:read' }), CLIENT_REDIRECT);
    expect(consentShown).toBe(true);
    // authorize, callback, consent page, consent post: both replicas took part.
    expect(served).toEqual(['a', 'b', 'a', 'b']);
    expect(outcome).toMatchObject({ kind: 'redirect', iss: PUBLIC_URL });
    const token = await tokenRequest(b.gateway.url, { grant_type: 'authorization_code', code: codeOf(outcome), code_verifier: verifier, client_id: clientId });
    expect(token.status).toBe(200);
    expect(decodeJwt(String(token.body.access_token))).toMatchObject({ iss: PUBLIC_URL, aud: `${PUBLIC_URL}/mcp`, scope: 'todo:read' });
    for (const replica of [a, b]) expect((await mcpRequest(`${replica.gateway.url}/mcp`, initializeRequest(1), { token: String(token.body.access_token) })).status).toBe(200);
    // Refresh on A; the old token reused on B revokes the family everywhere.
    const refreshed = await tokenRequest(a.gateway.url, { grant_type: 'refresh_token', refresh_token: String(token.body.refresh_token), client_id: clientId });
    expect(refreshed.status).toBe(200);
    const reused = await tokenRequest(b.gateway.url, { grant_type: 'refresh_token', refresh_token: String(token.body.refresh_token), client_id: clientId });
    expect(reused.body.error).toBe('invalid_grant');
    const newest = await tokenRequest(a.gateway.url, { grant_type: 'refresh_token', refresh_token: String(refreshed.body.refresh_token), client_id: clientId });
    expect(newest.body.error).toBe('invalid_grant');
    // A code redeemed on one replica is spent on the other.
    const replay = await tokenRequest(a.gateway.url, { grant_type: 'authorization_code', code: codeOf(outcome), code_verifier: verifier, client_id: clientId });
    expect(replay.body.error).toBe('invalid_grant');
  });

  it('the consent given through one replica is remembered by the other', async () => {
    const clientId = await registerClient(b.gateway.url);
    const run = async () => {
      const { challenge } = pkcePair();
      return new TestBrowser({ subject: 'bob', route: balance }).authorize(authorizationUrl(PUBLIC_URL, { clientId, challenge, resource: `${PUBLIC_URL}/mcp` }), CLIENT_REDIRECT);
    };
    expect((await run()).consentShown).toBe(true);
    const second = await run();
    expect(second.consentShown).toBe(false);
    expect(codeOf(second.outcome)).toMatch(/^[\w-]{43}$/);
  });

  it('the state is in Redis, under the store prefix', async () => {
    const keys = await inspector.keys(`${prefix}as:*`);
    for (const kind of ['client', 'consent', 'code', 'code-used', 'family-revoked']) expect(keys.some((key) => key.startsWith(`${prefix}as:${kind}:`)), kind).toBe(true);
  });
});
