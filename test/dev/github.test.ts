/**
 * The GitHub stand-in (dev/github.ts) takes GitHub's place in the authorization-server facade's
 * tests: these prove it has GitHub's shapes where a client can trip on them: plain OAuth 2.0,
 * form-encoded token answers unless JSON is asked for, errors with HTTP 200, comma-separated
 * scopes, numeric user ids, the `token` scheme, a User-Agent demanded, and GitHub App refresh tokens.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { get, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GITHUB_ACCESS_DENIED, startGitHubStandIn, type GitHubStandIn } from '../../dev/github.js';

const CLIENT_ID = 'Iv1.0123456789abcdef';
const CLIENT_SECRET = 'shhh-0123456789';
const USERS = [
  { id: 583231, login: 'octocat', name: 'The Octocat', email: 'octocat@github.example', publicOrgs: ['github'], orgs: ['octo-admins'] },
  { id: 9_000_001, login: 'hubot' },
];

async function authorize(gh: GitHubStandIn, params: Record<string, string>): Promise<{ status: number; location?: URL; body: string }> {
  const url = new URL(gh.authorizeUrl);
  url.search = new URLSearchParams({ client_id: CLIENT_ID, ...params }).toString();
  const response = await fetch(url, { redirect: 'manual' });
  const location = response.headers.get('location');
  return { status: response.status, ...(location ? { location: new URL(location) } : {}), body: await response.text() };
}

async function tokenCall(
  gh: GitHubStandIn,
  params: Record<string, string>,
  opts: { json?: boolean; jsonBody?: boolean; basic?: boolean } = {},
): Promise<{ status: number; contentType: string; body: Record<string, string> }> {
  const headers: Record<string, string> = {};
  if (opts.json) headers.accept = 'application/json';
  let all = params;
  if (opts.basic) headers.authorization = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
  else all = { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, ...params };
  headers['content-type'] = opts.jsonBody ? 'application/json' : 'application/x-www-form-urlencoded';
  const response = await fetch(gh.tokenUrl, { method: 'POST', headers, body: opts.jsonBody ? JSON.stringify(all) : new URLSearchParams(all) });
  const contentType = response.headers.get('content-type') ?? '';
  const text = await response.text();
  const body = contentType.includes('json') ? (JSON.parse(text) as Record<string, string>) : Object.fromEntries(new URLSearchParams(text));
  return { status: response.status, contentType, body };
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** fetch always sends a User-Agent; node:http sends none unless told. */
async function statusWithoutUserAgent(url: string, authorization: string): Promise<number | undefined> {
  const request = get(url, { headers: { authorization } });
  const [response] = (await once(request, 'response')) as [IncomingMessage];
  response.resume();
  return response.statusCode;
}

async function apiGet(gh: GitHubStandIn, path: string, authorization?: string) {
  const headers: Record<string, string> = { 'user-agent': 'mcp-auth-gateway-test' };
  if (authorization) headers.authorization = authorization;
  const response = await fetch(`${gh.apiUrl}${path}`, { headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: (): unknown => JSON.parse(text) };
}

describe('GitHub stand-in, classic OAuth app', () => {
  let gh: GitHubStandIn;
  let callback: string;

  beforeAll(async () => {
    gh = await startGitHubStandIn({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, users: USERS });
    callback = `${gh.url}/app/callback`; // any URL: the stand-in never follows it
    gh.setCallbackUrl(callback);
  });
  afterAll(async () => {
    await gh?.close();
  });

  /** A code for `scope` with PKCE, through the authorize endpoint. */
  async function code(scope = 'read:user read:org', redirectUri = callback) {
    const { verifier, challenge } = pkce();
    const { location } = await authorize(gh, { redirect_uri: redirectUri, scope, state: 's1', code_challenge: challenge, code_challenge_method: 'S256' });
    return { code: location!.searchParams.get('code')!, verifier, redirectUri };
  }

  async function accessToken(scope?: string): Promise<string> {
    const c = await code(scope);
    const { body } = await tokenCall(gh, { code: c.code, code_verifier: c.verifier, redirect_uri: c.redirectUri }, { json: true });
    return body.access_token!;
  }

  describe('GET /login/oauth/authorize', () => {
    it('approves at once: redirects to redirect_uri with a code and the state', async () => {
      const { status, location } = await authorize(gh, { redirect_uri: callback, state: 'xyz', scope: 'read:user' });
      expect(status).toBe(302);
      expect(`${location?.origin}${location?.pathname}`).toBe(callback);
      expect(location?.searchParams.get('state')).toBe('xyz');
      expect(location?.searchParams.get('code')).toMatch(/^[0-9a-f]{20}$/);
    });

    it('uses the callback URL when redirect_uri is omitted, and accepts a path below it', async () => {
      expect((await authorize(gh, { state: 'a' })).location?.pathname).toBe('/app/callback');
      expect((await authorize(gh, { redirect_uri: `${callback}/deeper`, state: 'b' })).location?.pathname).toBe('/app/callback/deeper');
    });

    it('sends a redirect_uri that is not the callback (other port, sibling path) to the callback with redirect_uri_mismatch', async () => {
      for (const redirectUri of ['http://127.0.0.1:1/app/callback', `${gh.url}/app/callbackx`, `${gh.url}/elsewhere`]) {
        const { location } = await authorize(gh, { redirect_uri: redirectUri, state: 'st' });
        expect(`${location?.origin}${location?.pathname}`, redirectUri).toBe(callback);
        expect(location?.searchParams.get('error')).toBe('redirect_uri_mismatch');
        expect(location?.searchParams.get('state')).toBe('st');
        expect(location?.searchParams.has('code')).toBe(false);
      }
    });

    it('shows a 404 page for an unknown client, redirecting nowhere', async () => {
      const { status, location } = await authorize(gh, { client_id: 'nope', redirect_uri: callback });
      expect(status).toBe(404);
      expect(location).toBeUndefined();
    });

    it('answers access_denied with the state while told to, then approves again', async () => {
      gh.failAuthorizations(GITHUB_ACCESS_DENIED);
      try {
        const { location } = await authorize(gh, { redirect_uri: callback, state: 'denied' });
        expect(Object.fromEntries(location!.searchParams)).toMatchObject({ ...GITHUB_ACCESS_DENIED, state: 'denied' });
        expect(location?.searchParams.has('code')).toBe(false);
      } finally {
        gh.failAuthorizations(undefined);
      }
      expect((await authorize(gh, { redirect_uri: callback })).location?.searchParams.has('code')).toBe(true);
    });

    it('refuses a plain PKCE challenge (S256 only)', async () => {
      const { location } = await authorize(gh, { redirect_uri: callback, code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' });
      expect(location?.searchParams.get('error')).toBe('invalid_request');
    });
  });

  describe('POST /login/oauth/access_token', () => {
    it('answers form-encoded by default, with comma-separated granted scopes', async () => {
      const c = await code('read:user read:org');
      const answer = await tokenCall(gh, { code: c.code, code_verifier: c.verifier });
      expect(answer.status).toBe(200);
      expect(answer.contentType).toMatch(/^application\/x-www-form-urlencoded/);
      expect(answer.body).toEqual({ access_token: expect.stringMatching(/^gho_/), token_type: 'bearer', scope: 'read:user,read:org' });
    });

    it('answers JSON for Accept: application/json, takes a JSON body and HTTP Basic client credentials', async () => {
      const c = await code();
      const answer = await tokenCall(gh, { code: c.code, code_verifier: c.verifier }, { json: true, jsonBody: true });
      expect(answer.contentType).toMatch(/^application\/json/);
      expect(answer.body.access_token).toMatch(/^gho_/);
      expect(answer.body).not.toHaveProperty('refresh_token');
      const viaBasic = await code();
      expect((await tokenCall(gh, { code: viaBasic.code, code_verifier: viaBasic.verifier }, { json: true, basic: true })).body.access_token).toMatch(/^gho_/);
    });

    it('answers a wrong secret with incorrect_client_credentials and HTTP 200, in either format; the right secret works', async () => {
      const c = await code();
      for (const json of [true, false]) {
        const answer = await tokenCall(gh, { client_secret: 'wrong', code: c.code, code_verifier: c.verifier }, { json });
        expect(answer.status).toBe(200);
        expect(answer.body).toMatchObject({ error: 'incorrect_client_credentials', error_description: expect.stringContaining('client_secret') });
        expect(answer.body).not.toHaveProperty('access_token');
      }
      expect((await tokenCall(gh, { code: c.code, code_verifier: c.verifier }, { json: true })).body.access_token).toMatch(/^gho_/);
    });

    it('checks the PKCE verifier: a wrong one gets bad_verification_code and burns the code', async () => {
      const c = await code();
      const wrong = await tokenCall(gh, { code: c.code, code_verifier: pkce().verifier }, { json: true });
      expect(wrong).toMatchObject({ status: 200, body: { error: 'bad_verification_code' } });
      expect((await tokenCall(gh, { code: c.code, code_verifier: c.verifier }, { json: true })).body.error).toBe('bad_verification_code');
      const missing = await code();
      expect((await tokenCall(gh, { code: missing.code }, { json: true })).body.error).toBe('bad_verification_code');
    });

    it('answers a replayed or unknown code with bad_verification_code', async () => {
      const c = await code();
      expect((await tokenCall(gh, { code: c.code, code_verifier: c.verifier }, { json: true })).body.access_token).toBeDefined();
      expect((await tokenCall(gh, { code: c.code, code_verifier: c.verifier }, { json: true })).body).toMatchObject({
        error: 'bad_verification_code',
        error_description: 'The code passed is incorrect or expired.',
      });
      expect((await tokenCall(gh, { code: 'ffffffffffffffffffff' }, { json: true })).body.error).toBe('bad_verification_code');
    });

    it('answers a redirect_uri other than the authorization\'s with redirect_uri_mismatch', async () => {
      const c = await code('read:user', `${callback}/sub`);
      const answer = await tokenCall(gh, { code: c.code, code_verifier: c.verifier, redirect_uri: callback }, { json: true });
      expect(answer.body.error).toBe('redirect_uri_mismatch');
    });

    it('issues no refresh token for a classic OAuth app, and refuses the refresh grant', async () => {
      expect((await tokenCall(gh, { grant_type: 'refresh_token', refresh_token: 'ghr_x' }, { json: true })).body.error).toBe('bad_refresh_token');
    });
  });

  describe('GET /user and /user/orgs', () => {
    it('returns the user with a numeric id for the Bearer and the token scheme, with X-OAuth-Scopes', async () => {
      const token = await accessToken('read:user user:email');
      for (const scheme of ['Bearer', 'token']) {
        const answer = await apiGet(gh, '/user', `${scheme} ${token}`);
        expect(answer.status).toBe(200);
        expect(answer.json()).toMatchObject({ id: 583231, login: 'octocat', name: 'The Octocat', email: 'octocat@github.example' });
        expect(answer.headers.get('x-oauth-scopes')).toBe('read:user, user:email');
      }
    });

    it('logs in the user the test names, with null name and email when unset', async () => {
      gh.loginAs('hubot');
      try {
        const answer = await apiGet(gh, '/user', `Bearer ${await accessToken()}`);
        expect(answer.json()).toMatchObject({ id: 9_000_001, login: 'hubot', name: null, email: null });
      } finally {
        gh.loginAs(undefined);
      }
      expect(() => gh.loginAs('nobody')).toThrow(/no user/);
    });

    it('answers GitHub\'s 401 bodies without or with bad credentials, and 403 without a User-Agent', async () => {
      const none = await apiGet(gh, '/user');
      expect(none.status).toBe(401);
      expect(none.json()).toMatchObject({ message: 'Requires authentication' });
      const bad = await apiGet(gh, '/user', 'Bearer gho_notissued');
      expect(bad.status).toBe(401);
      expect(bad.json()).toMatchObject({ message: 'Bad credentials', documentation_url: expect.any(String) });
      const token = await accessToken();
      expect(await statusWithoutUserAgent(`${gh.apiUrl}/user`, `Bearer ${token}`)).toBe(403);
      expect((await apiGet(gh, '/user', `Bearer ${token}`)).status).toBe(200);
    });

    it('lists private org memberships only with read:org', async () => {
      const withOrg = await apiGet(gh, '/user/orgs', `Bearer ${await accessToken('read:org')}`);
      expect(withOrg.status).toBe(200);
      const orgs = withOrg.json() as { login: string; id: number }[];
      expect(orgs.map((o) => o.login)).toEqual(['github', 'octo-admins']);
      expect(typeof orgs[0]?.id).toBe('number');
      const withoutOrg = await apiGet(gh, '/user/orgs', `Bearer ${await accessToken('read:user')}`);
      expect((withoutOrg.json() as { login: string }[]).map((o) => o.login)).toEqual(['github']);
      expect((await apiGet(gh, '/user/orgs')).status).toBe(401);
    });
  });

  it('records each token request with its parameters', () => {
    const tokenCalls = gh.requests.filter((r) => r.path === '/login/oauth/access_token');
    expect(tokenCalls.length).toBeGreaterThan(0);
    expect(tokenCalls[0]?.params).toMatchObject({ client_id: CLIENT_ID, code: expect.any(String) });
  });
});

describe('GitHub stand-in, GitHub App with expiring user tokens', () => {
  let gh: GitHubStandIn;

  beforeAll(async () => {
    gh = await startGitHubStandIn({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, users: USERS, expiringTokens: {} });
    gh.setCallbackUrl(`${gh.url}/cb`);
  });
  afterAll(async () => {
    await gh?.close();
  });

  async function firstTokens() {
    const { location } = await authorize(gh, { redirect_uri: `${gh.url}/cb` });
    return (await tokenCall(gh, { code: location!.searchParams.get('code')! }, { json: true })).body;
  }

  it('issues ghu_ tokens expiring in 8 hours with a single-use ghr_ refresh token', async () => {
    const first = await firstTokens();
    expect(first).toMatchObject({
      access_token: expect.stringMatching(/^ghu_/),
      expires_in: 28_800,
      refresh_token: expect.stringMatching(/^ghr_/),
      refresh_token_expires_in: 15_897_600,
      token_type: 'bearer',
    });
    const refreshed = (await tokenCall(gh, { grant_type: 'refresh_token', refresh_token: first.refresh_token! }, { json: true })).body;
    expect(refreshed.access_token).toMatch(/^ghu_/);
    expect(refreshed.refresh_token).not.toBe(first.refresh_token);
    const reused = await tokenCall(gh, { grant_type: 'refresh_token', refresh_token: first.refresh_token! }, { json: true });
    expect(reused).toMatchObject({ status: 200, body: { error: 'bad_refresh_token' } });
    const wrongSecret = await tokenCall(gh, { grant_type: 'refresh_token', refresh_token: refreshed.refresh_token!, client_secret: 'x' }, { json: true });
    expect(wrongSecret.body.error).toBe('incorrect_client_credentials');
  });

  it('refuses expired access tokens at the API; a refreshed one works', async () => {
    const first = await firstTokens();
    expect((await apiGet(gh, '/user', `Bearer ${first.access_token}`)).status).toBe(200);
    gh.expireAccessTokens();
    expect((await apiGet(gh, '/user', `Bearer ${first.access_token}`)).status).toBe(401);
    const refreshed = (await tokenCall(gh, { grant_type: 'refresh_token', refresh_token: first.refresh_token! }, { json: true })).body;
    expect((await apiGet(gh, '/user', `Bearer ${refreshed.access_token}`)).json()).toMatchObject({ id: 583231 });
  });

  it('goes down and comes back with its tokens', async () => {
    const first = await firstTokens();
    await gh.down();
    try {
      await expect(fetch(`${gh.apiUrl}/user`)).rejects.toThrow(/fetch failed/);
    } finally {
      await gh.up();
    }
    expect((await apiGet(gh, '/user', `Bearer ${first.access_token}`)).status).toBe(200);
  });
});
