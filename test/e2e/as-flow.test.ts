import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/as-browser.js';
import { authorizationUrl, CLIENT_REDIRECT, codeOf, fullGrant, pkcePair, registerClient, tokenRequest } from '../support/as-client.js';
import { IdpTokenVault } from '../../src/authorization-server/idp-tokens.js';
import { MemoryStore } from '../../src/store/memory.js';
import { IDP_TOKEN_KEY, startAsStack, type AsStack } from '../support/as-stack.js';
import { initializeRequest, mcpRequest, openSession, toolCall } from '../support/mcp-http.js';

/**
 * The gateway as the authorization server, by hand: discovery, registration, login at the IdP,
 * the gateway's consent page, the code, the token, and the token used on the route it was
 * issued for, with the IdP's own tokens kept away from the client.
 */
describe('authorization server: the code flow by hand', () => {
  let stack: AsStack;
  let issuer: string;
  let resource: string;
  const store = new MemoryStore();

  beforeAll(async () => {
    stack = await startAsStack({ gatewayOptions: { store } });
    issuer = stack.gateway.url;
    resource = stack.mcpUrl;
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("routes name the gateway as their authorization server, and its RFC 8414 metadata promises what it does", async () => {
    const prm = (await (await fetch(`${issuer}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<string, unknown>;
    expect(prm.authorization_servers).toEqual([issuer]);
    const metadata = (await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({
      issuer,
      authorization_endpoint: `${issuer}/oauth/authorize`,
      token_endpoint: `${issuer}/oauth/token`,
      registration_endpoint: `${issuer}/oauth/register`,
      revocation_endpoint: `${issuer}/oauth/revoke`,
      jwks_uri: `${issuer}/oauth/jwks.json`,
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['none'],
      authorization_response_iss_parameter_supported: true,
      client_id_metadata_document_supported: true,
    });
    const jwks = (await (await fetch(metadata.jwks_uri as string)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(['test-key-1']);
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  it('a first authorization asks for consent, then issues an at+jwt for the route with the granted scopes only', async () => {
    const grant = await fullGrant(issuer, resource, { subject: 'bob', scope: 'todo:read todo:write' });
    expect(grant.consentShown).toBe(true);
    // Bob is no todo admin: todo:write is not his to grant.
    expect(grant.token.scope).toBe('todo:read');
    expect(decodeProtectedHeader(grant.token.access_token).typ).toBe('at+jwt');
    const claims = decodeJwt(grant.token.access_token);
    expect(claims).toMatchObject({ iss: issuer, aud: resource, sub: 'idp|bob', client_id: grant.clientId, scope: 'todo:read' });
    expect(grant.token.refresh_token).toMatch(/^[\w-]+\.[\w-]+$/);
    const session = await openSession(resource, grant.token.access_token);
    const list = await mcpRequest(resource, toolCall(2, 'list_todos'), { token: grant.token.access_token, sessionId: session });
    expect(list.status).toBe(200);
  });

  it('the authorization response carries the client state and the issuer (RFC 9207)', async () => {
    const clientId = await registerClient(issuer);
    const { challenge } = pkcePair();
    const { outcome } = await new TestBrowser({ subject: 'alice' }).authorize(authorizationUrl(issuer, { clientId, challenge, resource, state: 'xyz' }), CLIENT_REDIRECT);
    expect(outcome).toMatchObject({ kind: 'redirect', state: 'xyz', iss: issuer });
    expect(codeOf(outcome)).toMatch(/^[\w-]{43}$/);
  });

  it("initialize works with the token; the IdP's tokens never reach the client and are kept sealed for the user", async () => {
    const grant = await fullGrant(issuer, resource, { subject: 'alice', scope: 'todo:read' });
    expect(Object.keys(grant.token).sort()).toEqual(['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type']);
    const kept = await new IdpTokenVault(store, IDP_TOKEN_KEY).read('idp|alice');
    expect(kept?.accessToken).toEqual(expect.any(String));
    expect(kept?.idToken).toEqual(expect.any(String));
    expect(Object.values(grant.token)).not.toContain(kept!.accessToken);
    const response = await mcpRequest(resource, initializeRequest(1), { token: grant.token.access_token });
    expect(response.status).toBe(200);
    const refreshed = await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: grant.token.refresh_token!, client_id: grant.clientId });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.scope).toBe('todo:read');
  });

  it('rotates signing keys on reload, without a restart: the new key signs, tokens of the old one still work', async () => {
    const before = await fullGrant(issuer, resource, { subject: 'alice', scope: 'todo:read' });
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const old = JSON.parse(await readFile(join(stack.dir, 'as-keys.jwks'), 'utf8')) as { keys: object[] };
    await writeFile(join(stack.dir, 'rotated.jwks'), JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: 'test-key-2' }, ...old.keys] }));
    await stack.reload((text) => text.replace('file: as-keys.jwks', 'file: rotated.jwks'));
    const jwks = (await (await fetch(`${issuer}/oauth/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(['test-key-2', 'test-key-1']);
    const after = await fullGrant(issuer, resource, { subject: 'alice', scope: 'todo:read' });
    expect(decodeProtectedHeader(after.token.access_token).kid).toBe('test-key-2');
    expect((await mcpRequest(resource, initializeRequest(1), { token: after.token.access_token })).status).toBe(200);
    expect((await mcpRequest(resource, initializeRequest(2), { token: before.token.access_token })).status).toBe(200);
  });
});
