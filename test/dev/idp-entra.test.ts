/**
 * The dev IdP's Entra mode (dev/idp-entra.ts) stands for Microsoft Entra ID in the
 * authorization-server facade's end-to-end tests; these tests prove it behaves like Entra where
 * the facade depends on it: no registration, `resource` refused (AADSTS9010010), one confidential
 * client authenticating by basic or post, code + PKCE, ID tokens with Entra's claims, refresh
 * tokens, and the levers a test pulls (who logs in, a refused login, the IdP down).
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import { AADSTS9010010, completeAuthorization, discover, startDevIdp, type DevIdp } from '../../dev/idp.js';

const CLIENT = { clientId: 'mcp-gateway', clientSecret: 'gateway-secret' };
const REDIRECT_URI = 'http://127.0.0.1:9/oauth/callback';
const SCOPE = 'openid profile email offline_access';

interface Flow {
  readonly url: URL;
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
}

function authorizationRequest(idp: DevIdp, authorizationEndpoint: string, extra: Record<string, string> = {}): Flow {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(8).toString('base64url');
  const nonce = randomBytes(8).toString('base64url');
  const url = new URL(authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT.clientId,
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    state,
    nonce,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...extra,
  }).toString();
  expect(url.href.startsWith(idp.issuer)).toBe(true);
  return { url, verifier, state, nonce };
}

/** The first redirect of an authorization request that the IdP refuses before any login. */
async function firstRedirect(url: URL): Promise<{ status: number; location: URL | undefined; body: string }> {
  const response = await fetch(url, { redirect: 'manual' });
  const location = response.headers.get('location');
  return { status: response.status, location: location ? new URL(location, url) : undefined, body: await response.text() };
}

/** The error code of a TCP connection to 127.0.0.1:port, or undefined when it connects. */
async function connectError(port: number): Promise<string | undefined> {
  const socket = connect(port, '127.0.0.1');
  try {
    await once(socket, 'connect');
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  } finally {
    socket.destroy();
  }
}

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function tokenRequest(
  endpoint: string,
  params: Record<string, string>,
  auth: 'basic' | 'post' = 'basic',
  secret = CLIENT.clientSecret,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = new URLSearchParams(params);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth === 'basic') headers.authorization = basic(CLIENT.clientId, secret);
  else {
    body.set('client_id', CLIENT.clientId);
    body.set('client_secret', secret);
  }
  const response = await fetch(endpoint, { method: 'POST', headers, body });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('dev IdP in Entra mode', () => {
  let idp: DevIdp;
  let metadata: Awaited<ReturnType<typeof discover>>;

  beforeAll(async () => {
    idp = await startDevIdp({
      scopes: [],
      signingAlg: 'RS256',
      entra: {
        client: { ...CLIENT, redirectUris: [REDIRECT_URI] },
        accounts: {
          alice: { groups: ['todo-admins', 'staff'], name: 'Alice Example' },
          bob: { oid: '00000000-0000-4000-a000-00000000b0b0', email: 'bob@other.example' },
        },
      },
    });
    metadata = await discover(idp);
  });
  afterAll(async () => {
    await idp?.close();
  });

  async function codeFlow(opts: { auth?: 'basic' | 'post'; extra?: Record<string, string> } = {}) {
    const flow = authorizationRequest(idp, metadata.authorization_endpoint, opts.extra);
    const { code, state } = await completeAuthorization(flow.url);
    expect(state).toBe(flow.state);
    const token = await tokenRequest(
      metadata.token_endpoint,
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: flow.verifier },
      opts.auth,
    );
    return { flow, token };
  }

  async function verifyIdToken(idToken: unknown, nonce?: string) {
    expect(typeof idToken).toBe('string');
    const { payload } = await jwtVerify(idToken as string, createRemoteJWKSet(new URL(metadata.jwks_uri)), {
      issuer: idp.issuer,
      audience: CLIENT.clientId,
    });
    if (nonce !== undefined) expect(payload.nonce).toBe(nonce);
    return payload;
  }

  it('has a tenant issuer like login.microsoftonline.com/{tenant}/v2.0', () => {
    expect(idp.entra?.tenantId).toMatch(/^[0-9a-f-]{36}$/);
    expect(idp.issuer).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/${idp.entra?.tenantId}/v2\\.0$`));
    expect(metadata.issuer).toBe(idp.issuer);
  });

  it('discovery offers no registration endpoint, and confidential client auth by basic or post', () => {
    expect(metadata).not.toHaveProperty('registration_endpoint');
    expect(metadata.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post']));
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token']));
  });

  it('serves no RFC 8414 document, only OIDC discovery (as Entra)', async () => {
    const origin = new URL(idp.issuer).origin;
    const tenantPath = new URL(idp.issuer).pathname;
    for (const url of [`${origin}/.well-known/oauth-authorization-server${tenantPath}`, `${idp.issuer}/.well-known/oauth-authorization-server`]) {
      expect((await fetch(url)).status, url).toBe(404);
    }
    expect((await fetch(`${idp.issuer}/.well-known/openid-configuration`)).status).toBe(200);
  });

  it('refuses dynamic registration', async () => {
    for (const path of ['/reg', '/register']) {
      const response = await fetch(`${idp.issuer}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none' }),
      });
      expect(response.status, path).toBe(404);
      await response.body?.cancel();
    }
  });

  it('refuses an authorization request with `resource` before any login (AADSTS9010010); the same without it succeeds', async () => {
    const before = idp.requests.filter((r) => r.path.startsWith('/interaction/')).length;
    const flow = authorizationRequest(idp, metadata.authorization_endpoint, { resource: 'http://127.0.0.1:9/mcp' });
    const { status, location } = await firstRedirect(flow.url);
    expect(status).toBe(303);
    expect(location?.origin + (location?.pathname ?? '')).toBe(REDIRECT_URI);
    expect(Object.fromEntries(location?.searchParams ?? [])).toMatchObject({
      error: 'invalid_target',
      error_description: AADSTS9010010,
      state: flow.state,
      iss: idp.issuer,
    });
    expect(idp.requests.filter((r) => r.path.startsWith('/interaction/')).length).toBe(before);

    const control = authorizationRequest(idp, metadata.authorization_endpoint);
    await expect(completeAuthorization(control.url)).resolves.toMatchObject({ state: control.state });
  });

  it('refuses `resource` at the token endpoint too; the same exchange without it succeeds', async () => {
    const flow = authorizationRequest(idp, metadata.authorization_endpoint);
    const { code } = await completeAuthorization(flow.url);
    const params = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: flow.verifier };
    const refused = await tokenRequest(metadata.token_endpoint, { ...params, resource: 'http://127.0.0.1:9/mcp' });
    // oidc-provider checks the resource against the code's grant before asking the mode's hook,
    // so the description here is its own; the error code is Entra's.
    expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
    // oidc-provider consumes the code on a refused exchange: a fresh one for the positive control.
    const fresh = authorizationRequest(idp, metadata.authorization_endpoint);
    const second = await completeAuthorization(fresh.url);
    const control = await tokenRequest(metadata.token_endpoint, { ...params, code: second.code, code_verifier: fresh.verifier });
    expect(control.status).toBe(200);
  });

  it.each(['basic', 'post'] as const)(
    'a code flow with PKCE and client_secret_%s returns an ID token with Entra claims, verified against the JWKS',
    async (auth) => {
      const { flow, token } = await codeFlow({ auth });
      expect(token.status).toBe(200);
      expect(token.body).toMatchObject({ token_type: 'Bearer', scope: SCOPE });
      expect(typeof token.body.access_token).toBe('string');
      const claims = await verifyIdToken(token.body.id_token, flow.nonce);
      expect(claims).toMatchObject({
        ...idp.entra!.claimsOf('alice'),
        tid: idp.entra!.tenantId,
        name: 'Alice Example',
        preferred_username: 'alice@contoso.example',
        email: 'alice@contoso.example',
        groups: ['todo-admins', 'staff'],
        ver: '2.0',
      });
      expect(claims.oid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
      // Like Entra: sub is pairwise per app, oid is the user.
      expect(claims.sub).toBe(idp.entra!.subjectOf('alice'));
      expect(claims.sub).not.toBe(claims.oid);
      expect(idp.entra!.subjectOf('alice', 'another-app')).not.toBe(claims.sub);
    },
  );

  it('answers a wrong secret, a wrong verifier and a replayed code with errors; the right ones work', async () => {
    const flow = authorizationRequest(idp, metadata.authorization_endpoint);
    const { code } = await completeAuthorization(flow.url);
    const params = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: flow.verifier };
    expect(await tokenRequest(metadata.token_endpoint, params, 'basic', 'wrong')).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(await tokenRequest(metadata.token_endpoint, { ...params, code_verifier: randomBytes(32).toString('base64url') })).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant' },
    });
    // oidc-provider consumes a code on a failed PKCE check: a fresh one for the positive control.
    const fresh = authorizationRequest(idp, metadata.authorization_endpoint);
    const second = await completeAuthorization(fresh.url);
    const freshParams = { ...params, code: second.code, code_verifier: fresh.verifier };
    expect((await tokenRequest(metadata.token_endpoint, freshParams)).status).toBe(200);
    expect(await tokenRequest(metadata.token_endpoint, freshParams)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('requires PKCE', async () => {
    const flow = authorizationRequest(idp, metadata.authorization_endpoint);
    flow.url.searchParams.delete('code_challenge');
    flow.url.searchParams.delete('code_challenge_method');
    const { location } = await firstRedirect(flow.url);
    expect(location?.searchParams.get('error')).toBe('invalid_request');
    expect(location?.searchParams.get('error_description')).toMatch(/PKCE/);
  });

  it('issues refresh tokens for offline_access, rotated on every refresh, with a fresh ID token', async () => {
    const { token } = await codeFlow();
    const first = token.body.refresh_token;
    expect(typeof first).toBe('string');
    const refreshed = await tokenRequest(metadata.token_endpoint, { grant_type: 'refresh_token', refresh_token: first as string });
    expect(refreshed.status).toBe(200);
    expect(typeof refreshed.body.refresh_token).toBe('string');
    expect(refreshed.body.refresh_token).not.toBe(first);
    expect(await verifyIdToken(refreshed.body.id_token)).toMatchObject({ oid: idp.entra!.claimsOf('alice').oid });

    const without = await codeFlow({ extra: { scope: 'openid profile email' } });
    expect(without.token.status).toBe(200);
    expect(without.token.body.refresh_token).toBeUndefined();
  });

  it('logs in whoever the test names next, with that account\'s claims', async () => {
    idp.loginAs('bob');
    try {
      const { flow, token } = await codeFlow();
      const claims = await verifyIdToken(token.body.id_token, flow.nonce);
      expect(claims).toMatchObject({ oid: '00000000-0000-4000-a000-00000000b0b0', email: 'bob@other.example', preferred_username: 'bob@contoso.example' });
      expect(claims).not.toHaveProperty('groups');
    } finally {
      idp.loginAs(undefined);
    }
    const { token } = await codeFlow();
    expect(await verifyIdToken(token.body.id_token)).toMatchObject({ oid: idp.entra!.claimsOf('alice').oid });
  });

  it('answers the authorization with an error while told to, with state and iss; then succeeds again', async () => {
    idp.failAuthorizations({ error: 'access_denied', error_description: 'AADSTS65004: User declined to consent.' });
    const flow = authorizationRequest(idp, metadata.authorization_endpoint);
    try {
      const error = await completeAuthorization(flow.url).then(
        () => undefined,
        (err: unknown) => err as { error?: string; error_description?: string },
      );
      expect(error).toMatchObject({ error: 'access_denied', error_description: 'AADSTS65004: User declined to consent.' });
    } finally {
      idp.failAuthorizations(undefined);
    }
    const control = authorizationRequest(idp, metadata.authorization_endpoint);
    await expect(completeAuthorization(control.url)).resolves.toMatchObject({ state: control.state });
  });

  it('goes down (connections refused) and comes back up on the same port', async () => {
    const { port } = new URL(idp.issuer);
    await idp.down();
    try {
      await expect(fetch(`${idp.issuer}/.well-known/openid-configuration`)).rejects.toThrow(/fetch failed/);
      // A kept-alive socket may fail differently first; a new connection is refused.
      expect(await connectError(Number(port))).toBe('ECONNREFUSED');
    } finally {
      await idp.up();
    }
    expect(await connectError(Number(port))).toBeUndefined();
    expect((await fetch(`${idp.issuer}/.well-known/openid-configuration`)).status).toBe(200);
    expect((await codeFlow()).token.status).toBe(200);
  });

  it('takes the redirect URI once known; an unregistered one is shown on a page, never redirected to', async () => {
    const later = 'http://127.0.0.1:10/oauth/callback';
    const flow = authorizationRequest(idp, metadata.authorization_endpoint, { redirect_uri: later });
    const refused = await firstRedirect(flow.url);
    expect(refused.status).toBe(400);
    expect(refused.location).toBeUndefined();
    expect(refused.body).toMatch(/redirect_uri/);

    await idp.entra!.setRedirectUris([REDIRECT_URI, later]);
    try {
      const retry = authorizationRequest(idp, metadata.authorization_endpoint, { redirect_uri: later });
      await expect(completeAuthorization(retry.url)).resolves.toMatchObject({ state: retry.state });
    } finally {
      await idp.entra!.setRedirectUris([REDIRECT_URI]);
    }
  });
});
