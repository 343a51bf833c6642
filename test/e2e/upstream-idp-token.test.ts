import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discover } from '../../dev/idp.js';
import { IdpTokenVault } from '../../src/authorization-server/idp-tokens.js';
import type { TokenSet } from '../../src/authorization-server/token-sets.js';
import { MemoryStore } from '../../src/store/memory.js';
import { fullGrant, tokenRequest } from '../support/as-client.js';
import { IDP_TOKEN_KEY, startAsShared, startAsStack, type AsShared, type AsStack } from '../support/as-stack.js';
import { startCredentialUpstream, type CredentialUpstream } from '../support/credential-upstream.js';
import { callTool } from '../support/upstream-auth-gateway.js';

/**
 * Issue 26, upstreamAuth.idpToken end to end: the gateway is the authorization server in front
 * of a real oidc-provider whose login client gets API access tokens (at+jwt for API) and rotating
 * refresh tokens; the upstream verifies what it receives with the IdP's JWKS and records it. The
 * upstream gets the token the user's own IdP login produced, renewed by the gateway before it
 * expires, and never the client's token (the gateway's own).
 */

const API = 'https://todo-api.example.test';
const ROUTE = ['    upstreamAuth:', '      idpToken: {}'].join('\n');

describe('routes[].upstreamAuth.idpToken', () => {
  let shared: AsShared;
  let upstream: CredentialUpstream;
  let stack: AsStack;
  const store = new MemoryStore();
  const vault = new IdpTokenVault(store, IDP_TOKEN_KEY);

  const login = async (subject: string) => (await fullGrant(stack.gateway.url, stack.mcpUrl, { subject })).token.access_token;
  const kept = async (subject: string): Promise<TokenSet> => (await vault.read(`idp|${subject}`))!;
  const refreshes = () => shared.idp.requests.filter((r) => r.method === 'POST' && r.path === '/token').length;
  /** Resolves once `tokens` are within `ms` of expiring. */
  const untilExpiry = (tokens: TokenSet, ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, tokens.expiresAt! * 1000 - ms - Date.now())));

  beforeAll(async () => {
    shared = await startAsShared({ loginClient: { apiResource: API, refreshTokens: true } });
    upstream = await startCredentialUpstream({ kind: 'jwt', jwksUri: (await discover(shared.idp)).jwks_uri, issuer: shared.idp.issuer, audiences: [API] });
    stack = await startAsStack({ shared, upstreamUrl: upstream.url, routeExtra: ROUTE, gatewayOptions: { store } });
  });
  afterAll(async () => {
    await stack?.close();
    await upstream?.close();
    await shared?.close();
  });

  it("sends the upstream the user's own IdP access token, which it verifies with the IdP's JWKS; never the client's token", async () => {
    const token = await login('alice');
    const idpTokens = await kept('alice');
    const before = refreshes();
    const response = await callTool(stack.mcpUrl, token);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    const got = upstream.received.at(-1)!;
    expect(got.accepted).toBe(true);
    expect(got.credential).toBe(`Bearer ${idpTokens.accessToken}`);
    expect(got.claims).toMatchObject({ iss: shared.idp.issuer, sub: 'alice', aud: API });
    // The gateway's token (the client's) is nowhere in what the upstream received.
    expect(JSON.stringify(got.headers)).not.toContain(token);
    // A second request uses the same token: no refresh at the IdP.
    expect((await callTool(stack.mcpUrl, token, {}, 2)).status).toBe(200);
    expect(upstream.received.at(-1)!.credential).toBe(`Bearer ${idpTokens.accessToken}`);
    expect(refreshes()).toBe(before);
    const audit = stack.logs.find((entry) => entry.event === 'authz' && entry.sub === 'idp|alice');
    expect(audit).toMatchObject({ upstreamAuth: 'idpToken', status: 200 });
    const logged = JSON.stringify(stack.logs);
    for (const secret of [idpTokens.accessToken, idpTokens.refreshToken!, token]) expect(logged).not.toContain(secret);
  });

  it('renews the IdP token with its refresh token when it nears expiry, once for concurrent requests, and keeps the new one sealed', async () => {
    shared.idp.setLoginTokenTtl(8);
    try {
      const token = await login('bob');
      const first = await kept('bob');
      expect(first.refreshToken).toEqual(expect.any(String));
      expect((await callTool(stack.mcpUrl, token)).status).toBe(200);
      expect(upstream.received.at(-1)!.credential).toBe(`Bearer ${first.accessToken}`);
      // Within a tenth of its 8 s lifetime of expiring: renewed before use, by one refresh for all.
      await untilExpiry(first, 500);
      const before = refreshes();
      const answers = await Promise.all([2, 3, 4, 5].map((id) => callTool(stack.mcpUrl, token, {}, id)));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      expect(refreshes()).toBe(before + 1);
      const renewed = await kept('bob');
      expect(renewed.accessToken).not.toBe(first.accessToken);
      // The IdP rotates refresh tokens: the new one is what is kept.
      expect(renewed.refreshToken).not.toBe(first.refreshToken);
      const sent = upstream.received.slice(-4);
      expect(sent.every((r) => r.accepted && r.credential === `Bearer ${renewed.accessToken}` && r.claims?.sub === 'bob')).toBe(true);
      expect(JSON.stringify(stack.logs)).not.toContain(renewed.accessToken);
      expect(stack.logs.some((entry) => entry.event === 'upstream-credential' && entry.upstreamAuth === 'idpToken' && entry.subject === 'idp|bob')).toBe(true);
    } finally {
      shared.idp.setLoginTokenTtl(600);
    }
  });

  it('answers 503 with Retry-After and forwards nothing when the IdP is down as the token needs renewing, then renews once it is back', async () => {
    shared.idp.setLoginTokenTtl(4);
    try {
      const token = await login('carol');
      const first = await kept('carol');
      await untilExpiry(first, 300);
      const before = upstream.received.length;
      await shared.idp.down();
      let down: Response;
      try {
        down = await callTool(stack.mcpUrl, token);
      } finally {
        await shared.idp.up();
      }
      expect(down.status).toBe(503);
      expect(Number(down.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(down.headers.get('www-authenticate')).toBeNull();
      expect(upstream.received.length).toBe(before);
      // Positive control: the IdP back (and its cool-down over), the same request goes through.
      await new Promise((resolve) => setTimeout(resolve, Number(down.headers.get('retry-after')) * 1000));
      expect((await callTool(stack.mcpUrl, token, {}, 2)).status).toBe(200);
      expect(upstream.received.at(-1)!.credential).toBe(`Bearer ${(await kept('carol')).accessToken}`);
      expect((await kept('carol')).accessToken).not.toBe(first.accessToken);
    } finally {
      shared.idp.setLoginTokenTtl(600);
    }
  });

  it('renews once and sends again when the upstream refuses the token; refused again, 401 with a fresh challenge and the kept tokens dropped', async () => {
    const token = await login('dave');
    const first = await kept('dave');
    expect((await callTool(stack.mcpUrl, token)).status).toBe(200);
    upstream.revoked.add(`Bearer ${first.accessToken}`);
    const before = upstream.received.length;
    const retried = await callTool(stack.mcpUrl, token, {}, 2);
    expect(retried.status).toBe(200);
    const renewed = await kept('dave');
    expect(upstream.received.slice(before).map((r) => [r.credential, r.accepted])).toEqual([
      [`Bearer ${first.accessToken}`, false],
      [`Bearer ${renewed.accessToken}`, true],
    ]);
    upstream.refuseAll = true;
    try {
      const refused = await callTool(stack.mcpUrl, token, {}, 3);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
      expect(await vault.read('idp|dave')).toBeUndefined();
    } finally {
      upstream.refuseAll = false;
    }
    // Nothing held: the next request is refused before the upstream, until the user signs in again.
    const count = upstream.received.length;
    expect((await callTool(stack.mcpUrl, token, {}, 4)).status).toBe(401);
    expect(upstream.received.length).toBe(count);
    expect((await callTool(stack.mcpUrl, await login('dave'), {}, 5)).status).toBe(200);
  });

  it('answers a user it holds no IdP token for with 401 and a fresh challenge, forwarding nothing, and ends their refresh token; a new login brings one', async () => {
    const grant = await fullGrant(stack.gateway.url, stack.mcpUrl, { subject: 'erin' });
    const token = grant.token.access_token;
    // Positive control first: while the IdP tokens are kept, the gateway's refresh token works.
    const refreshed = await tokenRequest(stack.gateway.url, { grant_type: 'refresh_token', refresh_token: grant.token.refresh_token!, client_id: grant.clientId });
    expect(refreshed.status).toBe(200);
    // As for a user who logged in before the gateway kept IdP tokens, or whose IdP issued none.
    await vault.clear('idp|erin');
    const before = upstream.received.length;
    const refused = await callTool(stack.mcpUrl, token);
    expect(refused.status).toBe(401);
    const challenge = refused.headers.get('www-authenticate')!;
    expect(challenge).toMatch(/^Bearer error="invalid_token", error_description="No identity provider token is held for this user: sign in again"/);
    expect(challenge).toContain(`resource_metadata="${stack.gateway.url}/.well-known/oauth-protected-resource/mcp"`);
    expect(upstream.received.length).toBe(before);
    // A refresh cannot bring IdP tokens back: the client is sent to sign in again instead of into another 401.
    const ended = await tokenRequest(stack.gateway.url, { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token as string, client_id: grant.clientId });
    expect(ended).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    // Positive control: signing in again keeps a token, and the request goes through.
    expect((await callTool(stack.mcpUrl, await login('erin'))).status).toBe(200);
    expect(upstream.received.at(-1)!.claims?.sub).toBe('erin');
  });
});
