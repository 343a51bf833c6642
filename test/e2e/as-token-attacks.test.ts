import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/as-browser.js';
import { authorizationUrl, CLIENT_REDIRECT, codeOf, fullGrant, pkcePair, registerClient, tokenRequest } from '../support/as-client.js';
import { startAsStack, type AsStack } from '../support/as-stack.js';
import { initializeRequest, mcpRequest } from '../support/mcp-http.js';

/**
 * Issue 25 item 7, the token side: codes are single use and bound to client, redirect URI, PKCE
 * verifier and resource; refresh tokens rotate and a reused one revokes its family; revocation
 * and registration refuse what they must. Every error is RFC 6749 §5.2 JSON, uncached, and
 * carries no token.
 */
describe('authorization server: token, refresh, revocation and registration requests that must fail', () => {
  let stack: AsStack;
  let issuer: string;
  let resource: string;

  beforeAll(async () => {
    stack = await startAsStack();
    issuer = stack.gateway.url;
    resource = stack.mcpUrl;
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** A fresh code for a fresh client, not yet redeemed. */
  const freshCode = async () => {
    const clientId = await registerClient(issuer);
    const { challenge, verifier } = pkcePair();
    const { outcome } = await new TestBrowser({ subject: 'alice' }).authorize(authorizationUrl(issuer, { clientId, challenge, resource }), CLIENT_REDIRECT);
    return { clientId, verifier, code: codeOf(outcome) };
  };
  const expectRefused = (answer: { status: number; body: Record<string, unknown>; headers: Headers }, error: string, status = 400) => {
    expect(answer.body).toMatchObject({ error });
    expect(answer.body.error_description).toEqual(expect.any(String));
    expect(answer.body.access_token).toBeUndefined();
    expect(answer.status).toBe(status);
    expect(answer.headers.get('cache-control')).toBe('no-store');
  };
  const works = async (token: unknown) => (await mcpRequest(resource, initializeRequest(1), { token: String(token) })).status;

  it.each([
    ['a wrong PKCE verifier', (c: Awaited<ReturnType<typeof freshCode>>) => ({ code_verifier: `${c.verifier.slice(0, -1)}x` }), 'invalid_grant'],
    ['no PKCE verifier', () => ({ code_verifier: null }), 'invalid_request'],
    ['another redirect URI', () => ({ redirect_uri: 'http://127.0.0.1:7777/other' }), 'invalid_grant'],
    ['another client', () => ({ client_id: 'someone-else' }), 'invalid_client'],
    ['another resource', () => ({ resource: 'http://127.0.0.1:1/mcp' }), 'invalid_target'],
    ['an unknown grant type', () => ({ grant_type: 'password' }), 'unsupported_grant_type'],
  ])('a code with %s is refused; the same code made legal is the control', async (_, change, error) => {
    const fresh = await freshCode();
    const legal: Record<string, string> = { grant_type: 'authorization_code', code: fresh.code, code_verifier: fresh.verifier, client_id: fresh.clientId, redirect_uri: CLIENT_REDIRECT, resource };
    const changed = { ...legal, ...change(fresh) };
    const sent = Object.fromEntries(Object.entries(changed).filter(([, v]) => v !== null)) as Record<string, string>;
    expectRefused(await tokenRequest(issuer, sent), error);
    // Control, with another fresh code: the legal request succeeds.
    const control = await freshCode();
    const ok = await tokenRequest(issuer, { ...legal, code: control.code, code_verifier: control.verifier, client_id: control.clientId });
    expect(ok.status).toBe(200);
    expect(await works(ok.body.access_token)).toBe(200);
  });

  it('a replayed code is refused and revokes the refresh token the first redemption got', async () => {
    const fresh = await freshCode();
    const request = { grant_type: 'authorization_code', code: fresh.code, code_verifier: fresh.verifier, client_id: fresh.clientId };
    const first = await tokenRequest(issuer, request);
    expect(first.status).toBe(200);
    expectRefused(await tokenRequest(issuer, request), 'invalid_grant');
    expectRefused(await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: String(first.body.refresh_token), client_id: fresh.clientId }), 'invalid_grant');
  });

  it('refresh rotates; a rotated token used again revokes the whole family, the newest token with it', async () => {
    const grant = await fullGrant(issuer, resource);
    const refresh = (token: unknown, clientId = grant.clientId) => tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: String(token), client_id: clientId });
    const second = await refresh(grant.token.refresh_token);
    expect(second.status).toBe(200);
    const third = await refresh(second.body.refresh_token);
    expect(third.status).toBe(200);
    expect(await works(third.body.access_token)).toBe(200);
    // The first token again: a copy is in someone else's hands.
    expectRefused(await refresh(grant.token.refresh_token), 'invalid_grant');
    expectRefused(await refresh(third.body.refresh_token), 'invalid_grant');
  });

  it('a refresh may narrow the scope but not widen it, and a refused refresh leaves the token usable', async () => {
    const grant = await fullGrant(issuer, resource, { subject: 'alice', scope: 'todo:read todo:write' });
    const base = { grant_type: 'refresh_token', client_id: grant.clientId };
    expectRefused(await tokenRequest(issuer, { ...base, refresh_token: grant.token.refresh_token!, scope: 'todo:read todo:admin' }), 'invalid_scope');
    expectRefused(await tokenRequest(issuer, { ...base, refresh_token: grant.token.refresh_token!, resource: 'http://127.0.0.1:1/mcp' }), 'invalid_target');
    const narrowed = await tokenRequest(issuer, { ...base, refresh_token: grant.token.refresh_token!, scope: 'todo:read' });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body.scope).toBe('todo:read');
    // The family keeps the grant: the next refresh without scope gets both again.
    const full = await tokenRequest(issuer, { ...base, refresh_token: String(narrowed.body.refresh_token) });
    expect(String(full.body.scope).split(' ').sort()).toEqual(['todo:read', 'todo:write']);
  });

  it("a refresh token is bound to its client: another client's use is refused without revoking it", async () => {
    const grant = await fullGrant(issuer, resource);
    const other = await registerClient(issuer);
    expectRefused(await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: grant.token.refresh_token!, client_id: other }), 'invalid_grant');
    expect((await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: grant.token.refresh_token!, client_id: grant.clientId })).status).toBe(200);
  });

  it('client credentials are refused (public clients only), as is a body that is not a form', async () => {
    const response = await fetch(`${issuer}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
      body: 'grant_type=authorization_code&code=x',
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Basic realm="oauth"');
    expect(((await response.json()) as { error: string }).error).toBe('invalid_client');
    const json = await fetch(`${issuer}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(((await json.json()) as { error: string }).error).toBe('invalid_request');
  });

  it("revocation (RFC 7009): the family goes, unknown tokens get 200, another client's token is refused", async () => {
    const grant = await fullGrant(issuer, resource);
    const revoke = (token: string, clientId: string) =>
      fetch(`${issuer}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, client_id: clientId }) });
    const other = await registerClient(issuer);
    expect((await revoke(grant.token.refresh_token!, other)).status).toBe(400);
    expect((await revoke('not-a-token', grant.clientId)).status).toBe(200);
    expect((await revoke(grant.token.refresh_token!, grant.clientId)).status).toBe(200);
    expectRefused(await tokenRequest(issuer, { grant_type: 'refresh_token', refresh_token: grant.token.refresh_token!, client_id: grant.clientId }), 'invalid_grant');
  });

  it.each([
    [{ redirect_uris: ['http://attacker.example/cb'] }, 'invalid_redirect_uri'],
    [{ redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
    [{ redirect_uris: ['https://app.example/cb#frag'] }, 'invalid_redirect_uri'],
    [{ redirect_uris: [] }, 'invalid_redirect_uri'],
    [{ token_endpoint_auth_method: 'client_secret_basic' }, 'invalid_client_metadata'],
    [{ grant_types: ['client_credentials'] }, 'invalid_client_metadata'],
    [{ response_types: ['token'] }, 'invalid_client_metadata'],
  ])('registration of %j is refused with %s (RFC 7591 §3.2.2); a native app may use its private-use scheme', async (metadata, error) => {
    const response = await fetch(`${issuer}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [CLIENT_REDIRECT], token_endpoint_auth_method: 'none', ...metadata }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe(error);
    expect(await registerClient(issuer, { application_type: 'native', redirect_uris: ['com.example.app:/oauth'] })).toMatch(/^[\w-]{24}$/);
  });
});
