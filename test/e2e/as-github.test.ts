import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GITHUB_ACCESS_DENIED, startGitHubStandIn, type GitHubStandIn } from '../../dev/github.js';
import { TestBrowser } from '../support/as-browser.js';
import { authorizationUrl, CLIENT_REDIRECT, codeOf, fullGrant, pkcePair, registerClient } from '../support/as-client.js';
import { leaked, startIdpAsStack, type IdpAsStack } from '../support/as-idp-stack.js';
import { AsHostProvider, connectHost, type HostSession } from '../support/as-sdk-client.js';

/**
 * Issue 25 end to end against GitHub (dev/github.ts): plain OAuth 2.0 without OpenID Connect, no
 * discovery (the preset's endpoints, here overridden to the stand-in's), the user read from
 * `GET /user` and named by its numeric id, token answers form-encoded unless JSON is asked for,
 * and token errors sent with HTTP 200. The real MCP SDK client runs its flow through the gateway.
 */

const APP = { clientId: 'Ov23liGatewayApp0001', clientSecret: 'github-app-secret-0123456789abcdef' };
const OCTOCAT = { id: 583231, login: 'octocat', name: 'The Octocat', email: 'octocat@github.example', publicOrgs: ['github'] };
const HUBOT = { id: 480938, login: 'hubot', name: null, email: null };

// Grants from the user's fields: `login` (a string) and the numeric `id` as GitHub sends it.
const GRANTS = `  grants:
    - scopes: [todo:read]
    - scopes: [todo:write]
      when: { claims: { login: octocat } }
    - scopes: [todo:admin]
      when: { claims: { id: ${OCTOCAT.id} } }`;

describe('gateway as authorization server in front of GitHub (plain OAuth 2.0)', () => {
  let gh: GitHubStandIn;
  let stack: IdpAsStack;
  let octocat: HostSession;
  const visited: URL[] = [];
  const sessions: HostSession[] = [];

  const atGitHub = () => visited.filter((url) => url.href.startsWith(gh.authorizeUrl));
  const tokenRequests = () => gh.requests.filter((r) => r.path === '/login/oauth/access_token');
  const connect = async (login: string) => {
    gh.loginAs(login);
    const session = await connectHost(stack.mcpUrl, new AsHostProvider(new TestBrowser({ route: (url) => (visited.push(new URL(url)), url) })));
    sessions.push(session);
    return session;
  };
  const request = (clientId: string, state: string) => authorizationUrl(stack.issuer, { clientId, challenge: pkcePair().challenge, resource: stack.mcpUrl, state });

  beforeAll(async () => {
    // GitHub App user tokens: they expire and come with a refresh token, which the gateway keeps sealed.
    gh = await startGitHubStandIn({ ...APP, users: [OCTOCAT, HUBOT], expiringTokens: {} });
    stack = await startIdpAsStack({
      upstream: [
        '    preset: github',
        `    authorizationEndpoint: ${gh.authorizeUrl}`,
        `    tokenEndpoint: ${gh.tokenUrl}`,
        `    userinfoEndpoint: ${gh.apiUrl}/user`,
        `    clientId: ${APP.clientId}`,
      ],
      clientSecret: APP.clientSecret,
      grants: GRANTS,
    });
    gh.setCallbackUrl(stack.callbackUrl);
    octocat = await connect('octocat');
  });
  afterAll(async () => {
    for (const session of sessions) await session.close();
    await stack?.close();
    await gh?.close();
  });

  it('the SDK client registers, logs in at GitHub, is asked for consent, and gets a gateway token whose sub is github|<numeric id>', () => {
    expect(octocat.provider.consentShown).toEqual([true]);
    const claims = decodeJwt(octocat.provider.tokens()!.access_token);
    expect(claims).toMatchObject({ iss: stack.issuer, aud: stack.mcpUrl, sub: `github|${OCTOCAT.id}`, client_id: octocat.provider.clientInformation()!.client_id, scope: 'todo:read' });
  });

  it("goes to GitHub's authorize endpoint with PKCE S256, state and the preset's scopes: no nonce, no resource", () => {
    const [authorize] = atGitHub();
    expect(authorize).toBeDefined();
    expect(Object.fromEntries(authorize!.searchParams)).toMatchObject({ client_id: APP.clientId, redirect_uri: stack.callbackUrl, scope: 'read:user user:email', code_challenge_method: 'S256', response_type: 'code' });
    expect(authorize!.searchParams.get('state')).toMatch(/^[\w-]{20,}$/);
    expect(authorize!.searchParams.has('nonce')).toBe(false);
    expect(authorize!.searchParams.has('resource')).toBe(false);
    // The code exchange: the secret in the body (GitHub reads it there), the gateway's PKCE verifier, nothing for the route.
    const exchange = tokenRequests()[0]!;
    expect(exchange.params).toMatchObject({ grant_type: 'authorization_code', client_id: APP.clientId, client_secret: APP.clientSecret, redirect_uri: stack.callbackUrl, code_verifier: expect.stringMatching(/^[\w-]{43,}$/) });
    expect(exchange.params).not.toHaveProperty('resource');
    // The user was read from the API, as GitHub has no ID token.
    expect(gh.requests.filter((r) => r.path === '/user')).toHaveLength(1);
  });

  it('lists tools through the gateway on the real MCP server', async () => {
    const { tools } = await octocat.withAuth(() => octocat.client.listTools());
    expect(tools.map((t) => t.name)).toContain('list_todos');
  });

  it('steps up to todo:write, granted by the login field, keeping todo:read; then refreshes with both', async () => {
    const result = await octocat.withAuth(() => octocat.client.callTool({ name: 'add_todo', arguments: { title: 'from the GitHub e2e' } }));
    expect(result.isError).toBeFalsy();
    expect(octocat.provider.consentShown).toEqual([true, true]);
    expect(String(decodeJwt(octocat.provider.tokens()!.access_token).scope).split(' ').sort()).toEqual(['todo:read', 'todo:write']);
    const before = octocat.provider.tokens()!;
    octocat.provider.spoilAccessToken();
    expect((await octocat.withAuth(() => octocat.client.listTools())).tools.length).toBeGreaterThan(0);
    expect(octocat.provider.tokens()!.refresh_token).not.toBe(before.refresh_token);
    expect(String(decodeJwt(octocat.provider.tokens()!.access_token).scope).split(' ').sort()).toEqual(['todo:read', 'todo:write']);
  });

  it("grants follow the user's fields: the numeric id and the login earn octocat all three scopes; hubot only the unconditional one", async () => {
    gh.loginAs('octocat');
    const mine = await fullGrant(stack.issuer, stack.mcpUrl, { scope: 'todo:read todo:write todo:admin' });
    expect(mine.token.scope.split(' ').sort()).toEqual(['todo:admin', 'todo:read', 'todo:write']);
    gh.loginAs('hubot');
    const his = await fullGrant(stack.issuer, stack.mcpUrl, { scope: 'todo:read todo:write todo:admin' });
    expect(his.token.scope).toBe('todo:read');
    expect(decodeJwt(his.token.access_token).sub).toBe(`github|${HUBOT.id}`);
  });

  it("keeps GitHub's tokens sealed for the user; they never reach the MCP client nor the MCP server", async () => {
    const kept = await stack.idpTokensOf(`github|${OCTOCAT.id}`);
    expect(kept).toMatchObject({ accessToken: expect.stringMatching(/^ghu_/), refreshToken: expect.stringMatching(/^ghr_/) });
    expect(kept).not.toHaveProperty('idToken');
    const secrets = [kept!.accessToken, kept!.refreshToken];
    expect(leaked(octocat.provider.tokenHistory, secrets)).toEqual([]);
    expect(leaked(stack.upstream.requests, secrets)).toEqual([]);
  });

  it('GitHub answers a token request form-encoded unless JSON is asked for: the logins above worked, so the gateway asked', async () => {
    const ask = (accept?: string) => fetch(gh.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(accept ? { accept } : {}) },
      body: new URLSearchParams({ client_id: APP.clientId, client_secret: APP.clientSecret, code: 'no-such-code' }),
    });
    const plain = await ask();
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toMatch(/^application\/x-www-form-urlencoded/);
    expect(new URLSearchParams(await plain.text()).get('error')).toBe('bad_verification_code');
    const json = await ask('application/json');
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    expect(((await json.json()) as { error?: string }).error).toBe('bad_verification_code');
  });

  it("GitHub's HTTP 200 with an error (wrong client secret) is server_error at the client with state and iss, and nothing is issued; the right secret is the control", async () => {
    const clientId = await registerClient(stack.issuer);
    gh.loginAs('hubot');
    await stack.reload((text) => text.replace('clientSecretFile: idp-secret', 'clientSecretFile: wrong-secret'), { 'wrong-secret': 'not-the-app-secret\n' });
    try {
      const before = stack.issued();
      const { outcome } = await new TestBrowser().authorize(request(clientId, 'bad-secret'), CLIENT_REDIRECT);
      expect(outcome).toMatchObject({ kind: 'redirect', error: 'server_error', state: 'bad-secret', iss: stack.issuer });
      expect(outcome).not.toHaveProperty('code');
      // Read as GitHub's refusal, not as a token answer missing its token: the operator's log says which.
      expect((outcome as { errorDescription?: string }).errorDescription).toBe('the identity provider refused the login (incorrect_client_credentials)');
      expect(stack.logs.filter((l) => l.level === 40).at(-1)).toMatchObject({ msg: expect.stringContaining('incorrect_client_credentials') });
      expect(tokenRequests().at(-1)!.params).toMatchObject({ client_secret: 'not-the-app-secret' });
      expect(stack.issued()).toEqual(before);
    } finally {
      await stack.reload((text) => text);
    }
    expect(codeOf((await new TestBrowser().authorize(request(clientId, 'good-secret'), CLIENT_REDIRECT)).outcome)).toMatch(/^[\w-]{43}$/);
  });

  it("the user's refusal at GitHub is access_denied at the client with state and iss, and nothing is issued; allowed again is the control", async () => {
    const clientId = await registerClient(stack.issuer);
    gh.failAuthorizations(GITHUB_ACCESS_DENIED);
    const before = stack.issued();
    const exchanges = tokenRequests().length;
    try {
      const { outcome } = await new TestBrowser().authorize(request(clientId, 'denied'), CLIENT_REDIRECT);
      expect(outcome).toMatchObject({ kind: 'redirect', error: 'access_denied', state: 'denied', iss: stack.issuer });
      expect(outcome).not.toHaveProperty('code');
      expect(stack.issued()).toEqual(before);
      expect(tokenRequests()).toHaveLength(exchanges);
    } finally {
      gh.failAuthorizations(undefined);
    }
    expect(codeOf((await new TestBrowser().authorize(request(clientId, 'allowed'), CLIENT_REDIRECT)).outcome)).toMatch(/^[\w-]{43}$/);
  });

  it('GitHub down between the login and the code exchange is temporarily_unavailable at the client, and nothing is issued', async () => {
    const clientId = await registerClient(stack.issuer);
    let stop = true;
    const browser = new TestBrowser({ stopAt: (url) => stop && url.href.startsWith(stack.callbackUrl) });
    const atCallback = await browser.navigate(request(clientId, 'gh-down'), CLIENT_REDIRECT);
    expect(atCallback.kind).toBe('stopped');
    const before = stack.issued();
    await gh.down();
    try {
      stop = false;
      const outcome = await browser.navigate((atCallback as { url: URL }).url, CLIENT_REDIRECT);
      expect(outcome).toMatchObject({ kind: 'redirect', error: 'temporarily_unavailable', state: 'gh-down', iss: stack.issuer });
      expect(outcome).not.toHaveProperty('code');
      expect(stack.issued()).toEqual(before);
    } finally {
      await gh.up();
    }
    expect(codeOf((await new TestBrowser().authorize(request(clientId, 'gh-up'), CLIENT_REDIRECT)).outcome)).toMatch(/^[\w-]{43}$/);
  });
});
