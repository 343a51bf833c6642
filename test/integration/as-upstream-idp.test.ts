import { createServer } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDevIdp, type DevIdp } from '../../dev/idp.js';
import { OAuthError } from '../../src/authorization-server/errors.js';
import { IdpTokenVault } from '../../src/authorization-server/idp-tokens.js';
import { endpointsOf } from '../../src/authorization-server/service.js';
import { UpstreamIdp } from '../../src/authorization-server/upstream-idp.js';
import type { UpstreamIdpConfig } from '../../src/config/types.js';
import { UPSTREAM_PRESET_DEFAULTS } from '../../src/config/upstream-presets.js';
import { createLogger } from '../../src/observability/logger.js';
import { MemoryStore } from '../../src/store/memory.js';
import { closeLocalServers, listenLocal } from '../support/local-servers.js';

const logger = createLogger('silent');
const CALLBACK = 'https://mcp.example.test/oauth/callback';
const CHECKS = { state: 'S'.repeat(43), codeVerifier: 'v'.repeat(43) };

/**
 * The IdP as the gateway's authorization server sees it, over real loopback sockets: a plain
 * OAuth 2.0 server like GitHub's (no discovery, no ID token, a user API with a numeric id), and
 * the OpenID Connect presets' authorization parameters against the real dev IdP's discovery.
 */
describe('upstream IdP: plain OAuth 2.0 (the github preset)', () => {
  const seen: { path: string; body: string; authorization?: string; accept?: string }[] = [];
  let base: string;
  let tokenStatus = 200;

  beforeAll(async () => {
    base = await listenLocal(
      createServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          seen.push({ path: req.url ?? '', body, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), ...(req.headers.accept ? { accept: req.headers.accept } : {}) });
          if (req.url === '/login/oauth/access_token') {
            res.writeHead(tokenStatus, { 'content-type': 'application/json' }).end(tokenStatus === 200 ? JSON.stringify({ access_token: 'gho_upstream', token_type: 'bearer', scope: 'read:user' }) : '{"error":"oops"}');
          } else if (req.url === '/user') {
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 583231, login: 'octocat', email: null }));
          } else res.writeHead(404).end();
        });
      }),
    );
  });
  afterAll(closeLocalServers);
  afterEach(() => {
    tokenStatus = 200;
  });

  const github = (): UpstreamIdp => {
    const config: UpstreamIdpConfig = {
      preset: 'github',
      authorizationEndpoint: `${base}/login/oauth/authorize`,
      tokenEndpoint: `${base}/login/oauth/access_token`,
      userinfoEndpoint: `${base}/user`,
      clientId: 'gh-client',
      clientSecret: 'gh-secret',
      scopes: [...UPSTREAM_PRESET_DEFAULTS.github.scopes],
      subjectClaim: 'id',
    };
    return new UpstreamIdp(config, CALLBACK, 2_000, logger);
  };

  it('the authorization request carries PKCE S256, state and the scopes, and no nonce (no OpenID Connect)', async () => {
    const url = await github().authorizationUrl(CHECKS);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ client_id: 'gh-client', response_type: 'code', redirect_uri: CALLBACK, scope: 'read:user user:email', state: CHECKS.state, code_challenge_method: 'S256' });
    expect(url.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(url.searchParams.has('nonce')).toBe(false);
  });

  it('the code is exchanged with the secret in the body, and the user read from the user API by its numeric id', async () => {
    seen.length = 0;
    const login = await github().finish(new URLSearchParams({ code: 'the-code', state: CHECKS.state }), CHECKS);
    expect(login.subject).toBe('583231');
    expect(login.claims).toMatchObject({ login: 'octocat' });
    expect(login.tokens.accessToken).toBe('gho_upstream');
    const token = new URLSearchParams(seen.find((r) => r.path === '/login/oauth/access_token')!.body);
    expect(Object.fromEntries(token)).toMatchObject({ grant_type: 'authorization_code', code: 'the-code', code_verifier: CHECKS.codeVerifier, client_id: 'gh-client', client_secret: 'gh-secret', redirect_uri: CALLBACK });
    expect(seen.find((r) => r.path === '/user')).toMatchObject({ authorization: 'Bearer gho_upstream' });
  });

  it('a state other than the one sent is refused before any code exchange', async () => {
    seen.length = 0;
    await expect(github().finish(new URLSearchParams({ code: 'c', state: 'other' }), CHECKS)).rejects.toMatchObject({ code: 'server_error' });
    expect(seen).toEqual([]);
  });

  it('a failing token endpoint (5xx) is temporarily_unavailable; a refusal (4xx) is server_error', async () => {
    tokenStatus = 502;
    await expect(github().finish(new URLSearchParams({ code: 'c', state: CHECKS.state }), CHECKS)).rejects.toMatchObject({ code: 'temporarily_unavailable' });
    tokenStatus = 400;
    const refused = await github().finish(new URLSearchParams({ code: 'c', state: CHECKS.state }), CHECKS).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OAuthError);
    expect((refused as OAuthError).code).toBe('server_error');
  });
});

describe('upstream IdP: OpenID Connect presets against the dev IdP', () => {
  let idp: DevIdp;

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: ['todo:read'] });
  });
  afterAll(async () => {
    await idp?.close();
  });

  const oidc = (preset: UpstreamIdpConfig['preset'], extra: Partial<UpstreamIdpConfig> = {}) =>
    new UpstreamIdp({ preset, issuer: idp.issuer, clientId: 'c', clientSecret: 's', scopes: ['openid'], subjectClaim: 'sub', ...extra }, CALLBACK, 2_000, logger);

  it('discovers the endpoints, sends a nonce, and adds each preset\'s quirks (never RFC 8707 resource)', async () => {
    const generic = await oidc('generic').authorizationUrl({ ...CHECKS, nonce: 'n1' });
    expect(generic.origin + generic.pathname).toBe(`${idp.issuer}/auth`);
    expect(generic.searchParams.get('nonce')).toBe('n1');
    const google = await oidc('google').authorizationUrl(CHECKS);
    expect([google.searchParams.get('access_type'), google.searchParams.get('prompt')]).toEqual(['offline', 'consent']);
    const auth0 = await oidc('auth0', { audience: 'https://api.example' }).authorizationUrl(CHECKS);
    expect(auth0.searchParams.get('audience')).toBe('https://api.example');
    for (const url of [generic, google, auth0]) expect(url.searchParams.has('resource')).toBe(false);
  });

  it('an IdP that cannot be reached makes every login temporarily_unavailable', async () => {
    const down = new UpstreamIdp({ preset: 'generic', issuer: 'http://127.0.0.1:9', clientId: 'c', clientSecret: 's', scopes: ['openid'], subjectClaim: 'sub' }, CALLBACK, 1_000, logger);
    await expect(down.authorizationUrl(CHECKS)).rejects.toMatchObject({ code: 'temporarily_unavailable' });
  });
});

describe("the IdP's tokens at rest (JWE dir + A256GCM)", () => {
  const key = Buffer.alloc(32, 7).toString('base64url');

  it('are sealed for one user: the store holds no plaintext, and another user or key cannot open them', async () => {
    const store = new MemoryStore();
    const vault = new IdpTokenVault(store, key);
    const sealed = await vault.seal('idp|alice', { accessToken: 'upstream-secret', refreshToken: 'r' });
    expect(sealed.split('.')).toHaveLength(5);
    expect(sealed).not.toContain('upstream-secret');
    await vault.keep('idp|alice', sealed, 60_000);
    expect(await vault.read('idp|alice')).toEqual({ accessToken: 'upstream-secret', refreshToken: 'r' });
    await expect(vault.open('idp|bob', sealed)).rejects.toThrow();
    await expect(new IdpTokenVault(store, Buffer.alloc(32, 8).toString('base64url')).open('idp|alice', sealed)).rejects.toThrow();
  });
});

describe('endpoints under the issuer', () => {
  it('sit under its path, with the metadata path-inserted (RFC 8414 §3.1)', () => {
    expect(endpointsOf('https://mcp.example.test').paths).toMatchObject({ metadataPath: '/.well-known/oauth-authorization-server', authorize: '/oauth/authorize' });
    expect(endpointsOf('https://mcp.example.test/tenant-a').urls).toMatchObject({
      metadataPath: 'https://mcp.example.test/.well-known/oauth-authorization-server/tenant-a',
      token: 'https://mcp.example.test/tenant-a/oauth/token',
      callback: 'https://mcp.example.test/tenant-a/oauth/callback',
    });
  });
});
