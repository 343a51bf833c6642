/**
 * The dev IdP (dev/idp.ts) is a real oidc-provider; these tests prove the properties the gateway's
 * end-to-end tests rely on: RFC 9068 access tokens for any RFC 8707 resource, verifiable from the
 * discovered JWKS, step-up with the same dynamic registration, no refresh tokens, and the MCP SDK's
 * own discovery/registration/PKCE functions working against it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import {
  discoverAuthorizationServerMetadata,
  exchangeAuthorization,
  registerClient,
  startAuthorization,
} from '@modelcontextprotocol/sdk/client/auth.js';

import {
  completeAuthorization,
  discover,
  obtainAccessToken,
  registerPublicClient,
  startDevIdp,
  type DevIdp,
} from '../../dev/idp.js';

const RESOURCE = 'http://127.0.0.1:1/mcp';
const SCOPES = ['todo:read', 'todo:write'];

async function verifyAccessToken(idp: DevIdp, token: string) {
  const { jwks_uri } = await discover(idp);
  return jwtVerify(token, createRemoteJWKSet(new URL(jwks_uri)), {
    typ: 'at+jwt', // RFC 9068 §2.1
    issuer: idp.issuer,
    audience: RESOURCE,
  });
}

describe.each(['RS256', 'ES256'] as const)('dev IdP signing %s access tokens', (alg) => {
  let idp: DevIdp;

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: SCOPES, signingAlg: alg });
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('has a loopback http issuer without trailing slash', () => {
    expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('issues an RFC 9068 at+jwt for the requested resource, verifiable from the discovered JWKS', async () => {
    const { accessToken, clientId, scope, tokenResponse } = await obtainAccessToken(idp, {
      resource: RESOURCE,
      scope: 'todo:read',
      subject: 'bob',
    });

    expect(scope).toBe('todo:read');
    expect(tokenResponse.refresh_token).toBeUndefined();
    expect(decodeProtectedHeader(accessToken)).toMatchObject({ alg, typ: 'at+jwt' });

    const { payload, protectedHeader } = await verifyAccessToken(idp, accessToken);
    expect(protectedHeader.alg).toBe(alg);
    expect(payload).toMatchObject({ sub: 'bob', scope: 'todo:read', client_id: clientId, aud: RESOURCE });
    expect(payload.exp! - payload.iat!).toBe(600);
  });

  it('logs in the default subject when no login_hint is sent', async () => {
    const { accessToken } = await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read' });
    const { payload } = await verifyAccessToken(idp, accessToken);
    expect(payload.sub).toBe('alice');
  });

  it('grants a wider scope to the SAME registration (step-up), without refresh tokens', async () => {
    const first = await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read' });
    const second = await obtainAccessToken(idp, {
      resource: RESOURCE,
      scope: 'todo:read todo:write',
      clientId: first.clientId,
    });

    expect(second.clientId).toBe(first.clientId);
    expect(second.scope.split(' ').sort()).toEqual(['todo:read', 'todo:write']);
    expect(second.tokenResponse.refresh_token).toBeUndefined();
    const { payload } = await verifyAccessToken(idp, second.accessToken);
    expect(payload.scope).toBe('todo:read todo:write');
    expect(payload.client_id).toBe(first.clientId);
  });

  it('never issues a refresh token, even when offline_access is asked for', async () => {
    const { tokenResponse, scope } = await obtainAccessToken(idp, {
      resource: RESOURCE,
      scope: 'todo:read offline_access',
    });
    expect(tokenResponse.refresh_token).toBeUndefined();
    expect(scope).toBe('todo:read');
  });
});

describe('dev IdP with the MCP SDK client functions', () => {
  let idp: DevIdp;

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: SCOPES });
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('serves RFC 8414 metadata at the path the SDK tries first', async () => {
    const response = await fetch(`${idp.issuer}/.well-known/oauth-authorization-server`);
    expect(response.status).toBe(200);
    const metadata = (await response.json()) as Record<string, unknown>;
    expect(metadata.issuer).toBe(idp.issuer);
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(['openid', ...SCOPES]));
    expect(metadata.scopes_supported).not.toContain('offline_access');
  });

  it('discovers, registers a public web client with an http loopback redirect, runs PKCE and steps up', async () => {
    const metadata = await discoverAuthorizationServerMetadata(idp.issuer);
    expect(metadata?.registration_endpoint).toBe(`${idp.issuer}/reg`);

    // What the SDK's auth() sends for an MCP client: web app, public, refresh_token grant listed.
    const redirectUrl = 'http://localhost:43210/callback';
    const clientInformation = await registerClient(idp.issuer, {
      metadata,
      clientMetadata: {
        client_name: 'sdk test client',
        redirect_uris: [redirectUrl],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
      scope: 'todo:read',
    });

    for (const scope of ['todo:read', 'todo:read todo:write']) {
      const { authorizationUrl, codeVerifier } = await startAuthorization(idp.issuer, {
        metadata,
        clientInformation,
        redirectUrl,
        scope,
        resource: new URL(RESOURCE),
        state: 'xyz',
      });
      const { code, state } = await completeAuthorization(authorizationUrl, { subject: 'carol' });
      expect(state).toBe('xyz');

      const tokens = await exchangeAuthorization(idp.issuer, {
        metadata,
        clientInformation,
        authorizationCode: code,
        codeVerifier,
        redirectUri: redirectUrl,
        resource: new URL(RESOURCE),
      });
      expect(tokens.refresh_token).toBeUndefined();
      const { payload } = await verifyAccessToken(idp, tokens.access_token);
      expect(payload).toMatchObject({ sub: 'carol', scope, client_id: clientInformation.client_id });
    }
  });

  it('rejects an authorization request without PKCE', async () => {
    const { clientId } = await registerPublicClient(idp);
    const { authorization_endpoint } = await discover(idp);
    const url = new URL(authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: 'http://127.0.0.1/callback',
      scope: 'todo:read',
      resource: RESOURCE,
    }).toString();
    await expect(completeAuthorization(url)).rejects.toThrow(/invalid_request/);
  });
});

describe('dev IdP claims by subject', () => {
  let idp: DevIdp;

  beforeAll(async () => {
    // `sub` is there to show a configured claim can never pass for someone else.
    idp = await startDevIdp({ scopes: SCOPES, accountClaims: { ops: { groups: ['ops'], sub: 'root' } } });
  });
  afterAll(async () => {
    await idp?.close();
  });

  it("puts a subject's claims in its access tokens, and nobody else's", async () => {
    const ops = await verifyAccessToken(idp, (await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', subject: 'ops' })).accessToken);
    expect(ops.payload).toMatchObject({ sub: 'ops', groups: ['ops'], scope: 'todo:read' });
    const other = await verifyAccessToken(idp, (await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', subject: 'dev' })).accessToken);
    expect(other.payload.sub).toBe('dev');
    expect(other.payload).not.toHaveProperty('groups');
  });

  it("never looks a subject up among the map's inherited properties", async () => {
    const { accessToken } = await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', subject: 'constructor' });
    const { payload } = await verifyAccessToken(idp, accessToken);
    expect(payload.sub).toBe('constructor');
    expect(payload).not.toHaveProperty('groups');
  });
});

describe('dev IdP levers for tests (default mode)', () => {
  let idp: DevIdp;

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: SCOPES });
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('logs in the subject named by loginAs over login_hint, until reset', async () => {
    idp.loginAs('carol');
    try {
      const { accessToken } = await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', subject: 'bob' });
      expect((await verifyAccessToken(idp, accessToken)).payload.sub).toBe('carol');
    } finally {
      idp.loginAs(undefined);
    }
    const { accessToken } = await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', subject: 'bob' });
    expect((await verifyAccessToken(idp, accessToken)).payload.sub).toBe('bob');
  });

  it('ends logins with the error it is told, until reset', async () => {
    idp.failAuthorizations({ error: 'access_denied', error_description: 'the user cancelled' });
    try {
      await expect(obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read' })).rejects.toMatchObject({
        error: 'access_denied',
        error_description: 'the user cancelled',
      });
    } finally {
      idp.failAuthorizations(undefined);
    }
    await expect(obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read' })).resolves.toMatchObject({ scope: 'todo:read' });
  });

  it('goes down and comes back with its registrations', async () => {
    const { clientId } = await registerPublicClient(idp);
    await idp.down();
    try {
      await expect(discover(idp)).rejects.toThrow(/fetch failed/);
    } finally {
      await idp.up();
    }
    await expect(obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', clientId })).resolves.toMatchObject({ clientId });
  });
});
