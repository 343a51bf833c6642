import { exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { discover, obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startCredentialUpstream, type CredentialUpstream } from '../support/credential-upstream.js';
import { IDP_SCOPES } from '../support/stack.js';
import { callTool, startUpstreamAuthGateway, type UpstreamAuthGateway } from '../support/upstream-auth-gateway.js';

/**
 * Issue 26, tokenExchange end to end: a real oidc-provider with the RFC 8693 and Entra
 * on-behalf-of grants (dev/idp-exchange.ts), the gateway, and an upstream that verifies what it
 * gets with the IdP's JWKS and records it. The upstream acts as the user with a token of its
 * own; the client's token never reaches it; a credential the gateway cannot obtain is refused
 * before anything is forwarded.
 */

const AUDIENCE = 'upstream-api';
const OBO_APP = 'api://upstream';
const SECRET = 'exchange-secret-1';

const exchangeYaml = (extra = '') => `      tokenExchange: { clientId: gateway, clientSecretFile: client-secret, audience: ${AUDIENCE}, scopes: [todo.read]${extra} }`;

describe('routes[].upstreamAuth.tokenExchange', () => {
  let idp: DevIdp;
  let upstream: CredentialUpstream;
  let gw: UpstreamAuthGateway;
  let clientKeyPem: string;
  let strayKeyPem: string;

  const tokenFor = async (subject: string) => (await obtainAccessToken(idp, { resource: gw.mcpUrl, scope: 'todo:read', subject })).accessToken;
  const exchangesFor = (subject: string) => idp.exchange.calls.filter((call) => call.subject === subject);
  const start = (upstreamAuth: string, idpTimeout?: string) =>
    startUpstreamAuthGateway({ issuer: idp.issuer, upstreamUrl: upstream.url, upstreamAuth, files: { 'client-secret': `${SECRET}\n`, 'client-key.pem': clientKeyPem, 'stray-key.pem': strayKeyPem }, ...(idpTimeout ? { idpTimeout } : {}) });

  beforeAll(async () => {
    const clientKey = await generateKeyPair('RS256', { extractable: true });
    clientKeyPem = await exportPKCS8(clientKey.privateKey);
    strayKeyPem = await exportPKCS8((await generateKeyPair('RS256', { extractable: true })).privateKey);
    idp = await startDevIdp({
      scopes: IDP_SCOPES,
      tokenExchange: {
        clients: [
          { clientId: 'gateway', clientSecret: SECRET },
          { clientId: 'gateway-post', clientSecret: SECRET, authMethod: 'client_secret_post' },
          { clientId: 'gateway-key', jwks: { keys: [{ ...(await exportJWK(clientKey.publicKey)), alg: 'RS256', use: 'sig' }] } },
        ],
      },
    });
    upstream = await startCredentialUpstream({ kind: 'jwt', jwksUri: (await discover(idp)).jwks_uri, issuer: idp.issuer, audiences: [AUDIENCE, OBO_APP] });
  });
  afterAll(async () => {
    await upstream?.close();
    await idp?.close();
  });
  beforeEach(() => {
    idp.exchange.fault = 'none';
    idp.exchange.delayMs = 0;
    upstream.refuseAll = false;
  });
  afterEach(async () => {
    await gw?.close();
  });

  it('sends the upstream a token exchanged for it, which it verifies with the IdP keys; never the client token', async () => {
    gw = await start(exchangeYaml());
    const token = await tokenFor('alice');
    const response = await callTool(gw.mcpUrl, token);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 1, result: {} });

    const [call] = exchangesFor('alice');
    expect(call).toMatchObject({ grantType: 'urn:ietf:params:oauth:grant-type:token-exchange', clientId: 'gateway', audience: AUDIENCE, scope: 'todo.read', outcome: 'issued' });
    const got = upstream.received.at(-1)!;
    expect(got.accepted).toBe(true);
    expect(got.credential).toBe(`Bearer ${call!.accessToken}`);
    expect(got.claims).toMatchObject({ iss: idp.issuer, sub: 'alice', aud: AUDIENCE, scope: 'todo.read' });
    // The client's token is nowhere in what the upstream received.
    expect(JSON.stringify(got.headers)).not.toContain(token);
    expect(token).not.toBe(call!.accessToken);
    // The audit line names the mode, never the credential; no log line holds either token.
    const audit = gw.logs.find((entry) => entry.event === 'authz');
    expect(audit).toMatchObject({ upstreamAuth: 'tokenExchange', sub: 'alice', status: 200 });
    const logged = JSON.stringify(gw.logs);
    expect(logged).not.toContain(call!.accessToken);
    expect(logged).not.toContain(token);
    expect(logged).not.toContain(SECRET);
  });

  it('exchanges once per principal: a second request uses the cache, another user gets their own', async () => {
    gw = await start(exchangeYaml());
    const olivia = await tokenFor('olivia');
    for (const id of [1, 2, 3]) expect((await callTool(gw.mcpUrl, olivia, {}, id)).status).toBe(200);
    expect(exchangesFor('olivia')).toHaveLength(1);
    const sent = upstream.received.slice(-3).map((r) => r.credential);
    expect(new Set(sent).size).toBe(1);
    // Positive control: the cache is per principal, not one credential for everyone.
    expect((await callTool(gw.mcpUrl, await tokenFor('peggy'))).status).toBe(200);
    expect(exchangesFor('peggy')).toHaveLength(1);
    expect(upstream.received.at(-1)!.claims?.sub).toBe('peggy');
  });

  it('lets concurrent first requests of one principal share one exchange', async () => {
    gw = await start(exchangeYaml());
    const token = await tokenFor('carol');
    idp.exchange.delayMs = 300; // the exchange is still under way when the others arrive
    const answers = await Promise.all([1, 2, 3, 4, 5].map((id) => callTool(gw.mcpUrl, token, {}, id)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(exchangesFor('carol')).toHaveLength(1);
    expect(upstream.received.slice(-5).every((r) => r.accepted && r.claims?.sub === 'carol')).toBe(true);
  });

  it('answers 503 with Retry-After and forwards nothing while the IdP is down, then recovers', async () => {
    gw = await start(exchangeYaml());
    const token = await tokenFor('dave');
    const before = upstream.received.length;
    idp.exchange.fault = 'unavailable';
    const down = await callTool(gw.mcpUrl, token);
    expect(down.status).toBe(503);
    expect(Number(down.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(down.headers.get('www-authenticate')).toBeNull();
    expect((await down.json()) as object).toMatchObject({ id: 1, error: { code: -32000 } });
    expect(upstream.received.length).toBe(before);
    // Positive control: the IdP back, after the Retry-After, the same request goes through.
    idp.exchange.fault = 'none';
    await new Promise((resolve) => setTimeout(resolve, Number(down.headers.get('retry-after')) * 1000 + 100));
    expect((await callTool(gw.mcpUrl, token)).status).toBe(200);
    expect(upstream.received.length).toBe(before + 1);
  });

  it('answers 503 when the IdP does not answer in time', async () => {
    gw = await start(exchangeYaml(), '500ms');
    const token = await tokenFor('erin');
    const before = upstream.received.length;
    idp.exchange.fault = 'hang';
    const response = await callTool(gw.mcpUrl, token);
    expect(response.status).toBe(503);
    expect(upstream.received.length).toBe(before);
  });

  it('answers 401 with a fresh challenge when the IdP refuses the exchange, and forwards nothing', async () => {
    gw = await start(exchangeYaml());
    const token = await tokenFor('frank');
    const before = upstream.received.length;
    idp.exchange.fault = 'invalid_grant';
    const refused = await callTool(gw.mcpUrl, token);
    expect(refused.status).toBe(401);
    const challenge = refused.headers.get('www-authenticate')!;
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain('error="invalid_token"');
    expect(challenge).toContain(`resource_metadata="${gw.gateway.url}/.well-known/oauth-protected-resource/mcp"`);
    expect(upstream.received.length).toBe(before);
    // Positive control: signed in again, the user's new token is exchanged and forwarded.
    idp.exchange.fault = 'none';
    expect((await callTool(gw.mcpUrl, await tokenFor('frank'))).status).toBe(200);
    expect(upstream.received.length).toBe(before + 1);
  });

  it('on an upstream 401 drops the credential, exchanges once more and re-sends once; refused again, answers 401', async () => {
    gw = await start(exchangeYaml());
    const token = await tokenFor('grace');
    expect((await callTool(gw.mcpUrl, token)).status).toBe(200);
    const first = upstream.received.at(-1)!.credential!;
    // The upstream revokes the credential it accepted: the gateway refreshes it, transparently.
    upstream.revoked.add(first);
    const before = upstream.received.length;
    const renewed = await callTool(gw.mcpUrl, token, {}, 2);
    expect(renewed.status).toBe(200);
    expect(await renewed.json()).toEqual({ jsonrpc: '2.0', id: 2, result: {} });
    expect(exchangesFor('grace')).toHaveLength(2);
    const [refusedTry, retry] = upstream.received.slice(before);
    expect(refusedTry).toMatchObject({ credential: first, accepted: false });
    expect(retry!.accepted).toBe(true);
    expect(retry!.credential).not.toBe(first);
    expect(retry!.body).toBe(refusedTry!.body);
    expect(upstream.received.length).toBe(before + 2);

    // An upstream that takes no credential at all: one refresh, one re-send, then 401.
    upstream.refuseAll = true;
    const again = upstream.received.length;
    const refused = await callTool(gw.mcpUrl, token, {}, 3);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(upstream.received.length).toBe(again + 2);
    expect(exchangesFor('grace')).toHaveLength(3);
  });

  it('does not re-send a GET after an upstream 401: 503 to retry, with the credential renewed', async () => {
    gw = await start(exchangeYaml());
    const token = await tokenFor('heidi');
    expect((await callTool(gw.mcpUrl, token)).status).toBe(200);
    upstream.revoked.add(upstream.received.at(-1)!.credential!);
    const before = upstream.received.length;
    const get = await fetch(gw.mcpUrl, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-protocol-version': '2025-06-18' } });
    expect(get.status).toBe(503);
    expect(get.headers.get('retry-after')).toBe('1');
    expect(upstream.received.length).toBe(before + 1);
    // The next request carries a fresh credential.
    expect((await callTool(gw.mcpUrl, token)).status).toBe(200);
    expect(exchangesFor('heidi')).toHaveLength(2);
  });

  it('authenticates to the IdP with private_key_jwt (RFC 7523) and with client_secret_post', async () => {
    gw = await start('      tokenExchange: { clientId: gateway-key, privateKeyFile: client-key.pem, algorithm: RS256, audience: upstream-api }');
    expect((await callTool(gw.mcpUrl, await tokenFor('ivan'))).status).toBe(200);
    expect(exchangesFor('ivan')).toMatchObject([{ clientId: 'gateway-key', outcome: 'issued' }]);
    await gw.close();

    gw = await start(`      tokenExchange: { clientId: gateway-post, clientSecretFile: client-secret, authMethod: client_secret_post, audience: ${AUDIENCE} }`);
    expect((await callTool(gw.mcpUrl, await tokenFor('judy'))).status).toBe(200);
    expect(exchangesFor('judy')).toMatchObject([{ clientId: 'gateway-post', outcome: 'issued' }]);
    await gw.close();

    // Negative control: a key the IdP does not know is refused as the gateway's fault (503), not the user's.
    gw = await start('      tokenExchange: { clientId: gateway-key, privateKeyFile: stray-key.pem, audience: upstream-api }');
    const before = upstream.received.length;
    const refused = await callTool(gw.mcpUrl, await tokenFor('ivan'));
    expect(refused.status).toBe(503);
    expect(upstream.received.length).toBe(before);
    expect(gw.logs.some((entry) => entry.msg === 'token exchange failed: requests on this route get 503' && String(entry.why).includes('invalid_client'))).toBe(true);
  });

  it("speaks Entra's on-behalf-of flow with preset entra-obo", async () => {
    gw = await start(`      tokenExchange: { clientId: gateway, clientSecretFile: client-secret, preset: entra-obo, scopes: ["${OBO_APP}/.default"] }`);
    expect((await callTool(gw.mcpUrl, await tokenFor('mallory'))).status).toBe(200);
    expect(exchangesFor('mallory')).toMatchObject([{ grantType: 'urn:ietf:params:oauth:grant-type:jwt-bearer', audience: OBO_APP, scope: `${OBO_APP}/.default`, outcome: 'issued' }]);
    expect(upstream.received.at(-1)!.claims).toMatchObject({ sub: 'mallory', aud: OBO_APP });
  });

  it("sends the gateway's Authorization only, and no other credential a client sends", async () => {
    gw = await start(exchangeYaml());
    const token = await tokenFor('niaj');
    const response = await callTool(gw.mcpUrl, token, { 'x-api-key': 'client-chosen', 'proxy-authorization': 'Basic eDp5' });
    expect(response.status).toBe(200);
    const got = upstream.received.at(-1)!;
    expect(got.headers['x-api-key']).toBeUndefined();
    expect(got.headers['proxy-authorization']).toBeUndefined();
    expect(got.credential).toBe(`Bearer ${exchangesFor('niaj')[0]!.accessToken}`);
  });
});

describe('tokenExchange config', () => {
  it('resolves files relative to the config and refuses a key file that is not a key', async () => {
    const idp = await startDevIdp({ scopes: IDP_SCOPES });
    try {
      await expect(
        startUpstreamAuthGateway({ issuer: idp.issuer, upstreamUrl: 'http://127.0.0.1:1/mcp', upstreamAuth: '      tokenExchange: { clientId: g, privateKeyFile: key.pem }', files: { 'key.pem': 'not a key' } }),
      ).rejects.toThrow(/gateway\.yaml:\d+:\d+: .*privateKeyFile 'key\.pem' is not a PKCS#8 PEM private key for RS256/);
    } finally {
      await idp.close();
    }
  });
});
