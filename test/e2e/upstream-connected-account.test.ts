import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitHubStandIn, type GitHubStandIn } from '../../dev/github.js';
import { ConnectedAccounts } from '../../src/authorization-server/connections.js';
import { MemoryStore } from '../../src/store/memory.js';
import { TestBrowser } from '../support/as-browser.js';
import { fullGrant } from '../support/as-client.js';
import { AsHostProvider } from '../support/as-sdk-client.js';
import { IDP_TOKEN_KEY, startAsShared, startAsStack, type AsShared, type AsStack } from '../support/as-stack.js';
import { startProviderCheckedUpstream, type ProviderCheckedUpstream } from '../support/provider-checked-upstream.js';

/**
 * Issue 26, upstreamAuth.connectedAccount end to end: the gateway is the authorization server in
 * front of a real oidc-provider; the route's upstream (the real sample MCP server behind a check
 * of the GitHub token with GitHub's user API) needs the user's own GitHub token; the GitHub
 * stand-in runs a real authorization code flow. The real MCP SDK client meets the -32042 URL
 * elicitation, its user connects on the gateway's page, and the client retries. A link opened
 * by anyone but the user it was made for binds nothing.
 */

const GH = { clientId: 'gh-app', clientSecret: 'gh-app-secret' };
/** Where the test's browsers never arrive: every flow here ends on a gateway page. */
const NOWHERE = 'http://127.0.0.1:9/never';

describe('routes[].upstreamAuth.connectedAccount', () => {
  let shared: AsShared;
  let github: GitHubStandIn;
  let upstream: ProviderCheckedUpstream;
  let stack: AsStack;
  const store = new MemoryStore();
  const browsers = new Map<string, TestBrowser>();
  const clients: Client[] = [];

  const browserOf = (subject: string) => browsers.get(subject) ?? browsers.set(subject, new TestBrowser({ subject })).get(subject)!;
  /** An MCP host for `subject`: the SDK client (declaring URL elicitation), authorised through the gateway as the SDK decides. */
  const host = (subject: string) => {
    const provider = new AsHostProvider(browserOf(subject));
    const open = async (): Promise<Client> => {
      const transport = new StreamableHTTPClientTransport(new URL(stack.mcpUrl), { authProvider: provider });
      const client = new Client({ name: 'elicitation-host', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
      try {
        await client.connect(transport);
      } catch (error) {
        if (!(error instanceof UnauthorizedError) || !provider.pendingCode) throw error;
        const code = provider.pendingCode;
        provider.pendingCode = undefined;
        await transport.finishAuth(code);
        return open();
      }
      clients.push(client);
      return client;
    };
    return { provider, open };
  };
  /** What the SDK client threw, as the URL elicitation it must be. */
  const elicitationOf = async (attempt: Promise<unknown>) => {
    const error = await attempt.then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(UrlElicitationRequiredError);
    const [elicitation, ...more] = (error as UrlElicitationRequiredError).elicitations;
    expect(more).toEqual([]);
    return elicitation!;
  };
  /** The user opens the link in their browser, as a host does after asking them. */
  const openLink = (subject: string, url: string) => browserOf(subject).navigate(url, NOWHERE);
  const authorizeRequests = () => github.requests.filter((r) => r.path === '/login/oauth/authorize').length;

  beforeAll(async () => {
    shared = await startAsShared({ files: { 'gh-secret': `${GH.clientSecret}\n` } });
    github = await startGitHubStandIn({
      ...GH,
      users: [
        { id: 101, login: 'alice-gh' },
        { id: 102, login: 'bob-gh' },
        { id: 103, login: 'mallory-gh' },
      ],
      expiringTokens: { accessTokenTtlSeconds: 3600 },
    });
    upstream = await startProviderCheckedUpstream({ target: shared.upstream.url, userApi: `${github.apiUrl}/user` });
    const account = `{ preset: github, authorizationEndpoint: "${github.authorizeUrl}", tokenEndpoint: "${github.tokenUrl}", clientId: ${GH.clientId}, clientSecretFile: gh-secret, scopes: [repo] }`;
    stack = await startAsStack({ shared, upstreamUrl: upstream.url, routeExtra: `    upstreamAuth:\n      connectedAccount: ${account}`, gatewayOptions: { store } });
    github.setCallbackUrl(`${stack.gateway.url}/oauth/connect/callback`);
  });
  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await stack?.close();
    await upstream?.close();
    await github?.close();
    await shared?.close();
  });

  it("asks a user without a connection through a URL elicitation, runs GitHub's code flow for that same user, and the retry reaches the upstream with the user's GitHub token", async () => {
    const alice = host('alice');
    const before = upstream.received.length;
    const elicitation = await elicitationOf(alice.open());
    expect(elicitation).toEqual({
      mode: 'url',
      elicitationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      url: expect.stringMatching(new RegExp(`^${stack.gateway.url}/oauth/connect\\?request=[\\w-]{43}$`)),
      message: 'Connect your GitHub account so that todo can act for you',
    });
    // Nothing went upstream without a credential.
    expect(upstream.received.length).toBe(before);

    github.loginAs('alice-gh');
    const outcome = await openLink('alice', elicitation.url);
    expect(outcome).toMatchObject({ kind: 'page', status: 200 });
    expect((outcome as { html: string }).html).toContain('Your GitHub account is connected');
    // The gateway's own flow at GitHub: PKCE S256, its state, its redirect URI, the secret in the body.
    const token = github.requests.filter((r) => r.path === '/login/oauth/access_token').at(-1)!;
    expect(token.params).toMatchObject({ grant_type: 'authorization_code', client_id: GH.clientId, client_secret: GH.clientSecret, redirect_uri: `${stack.gateway.url}/oauth/connect/callback`, code_verifier: expect.stringMatching(/^[\w-]{43,}$/) });

    // The client retries: connected, it lists and calls tools, each request carrying Alice's GitHub token.
    const client = await alice.open();
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('list_todos');
    expect((await client.callTool({ name: 'list_todos', arguments: {} })).isError).toBeFalsy();
    const sent = upstream.received.slice(before);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((r) => r.login === 'alice-gh' && /^Bearer ghu_[\w-]+$/.test(r.credential ?? ''))).toBe(true);
    // The gateway's token (the client's) never reached the upstream.
    const clientToken = alice.provider.tokens()!.access_token;
    expect(sent.some((r) => JSON.stringify(r.headers).includes(clientToken))).toBe(false);
    // The link was for one use.
    expect(await openLink('alice', elicitation.url)).toMatchObject({ kind: 'page', status: 400 });
    // Audit lines name the mode; no log line holds the GitHub token or the client secret.
    expect(stack.logs.some((e) => e.event === 'authz' && e.sub === 'idp|alice' && e.upstreamAuth === 'connectedAccount' && e.status === 200)).toBe(true);
    const logged = JSON.stringify(stack.logs);
    expect(logged).not.toContain(sent[0]!.credential!.slice('Bearer '.length));
    expect(logged).not.toContain(GH.clientSecret);
  });

  it('binds nothing when a link is opened by another user (forwarded, or sent as a lure), burns it, and lets the right user connect with a new one', async () => {
    const bob = host('bob');
    const mallory = host('mallory');
    const bobLink = await elicitationOf(bob.open());
    const malloryLink = await elicitationOf(mallory.open());
    const authorizations = authorizeRequests();

    // Bob's link forwarded to Mallory: she signs in as herself, and GitHub is never reached.
    github.loginAs('mallory-gh');
    const stolen = await openLink('mallory', bobLink.url);
    expect(stolen).toMatchObject({ kind: 'page', status: 403 });
    expect((stolen as { html: string }).html).toContain('this link was made for another account');
    // Mallory's link sent to Bob as a lure: Bob signs in as himself; nothing is bound to Mallory.
    github.loginAs('bob-gh');
    expect(await openLink('bob', malloryLink.url)).toMatchObject({ kind: 'page', status: 403 });
    expect(authorizeRequests()).toBe(authorizations);
    expect(stack.logs.filter((e) => e.event === 'connected-account' && e.outcome === 'other-user')).toHaveLength(2);
    // Neither user is connected: both are still asked.
    await elicitationOf(mallory.open());
    // The link someone else opened is burnt, for its own user too.
    expect(await openLink('bob', bobLink.url)).toMatchObject({ kind: 'page', status: 400 });

    // Positive control: Bob's next attempt brings a new link, which he opens himself.
    const fresh = await elicitationOf(bob.open());
    expect(fresh.url).not.toBe(bobLink.url);
    expect(await openLink('bob', fresh.url)).toMatchObject({ kind: 'page', status: 200 });
    const client = await bob.open();
    expect((await client.callTool({ name: 'list_todos', arguments: {} })).isError).toBeFalsy();
    expect(upstream.received.at(-1)!.login).toBe('bob-gh');
  });

  it("renews a token GitHub no longer takes with its refresh token, once, and sends the request again", async () => {
    const opened = upstream.received.length;
    const client = await host('alice').open();
    // The SDK opens its GET stream after connecting: once it is open, only the POST below meets the expired token.
    while (!upstream.received.slice(opened).some((r) => r.method === 'GET')) await new Promise((resolve) => setTimeout(resolve, 20));
    github.expireAccessTokens();
    const before = upstream.received.length;
    const refreshes = github.requests.filter((r) => r.params?.grant_type === 'refresh_token').length;
    expect((await client.callTool({ name: 'list_todos', arguments: {} })).isError).toBeFalsy();
    const sent = upstream.received.slice(before);
    expect(sent.map((r) => r.login)).toEqual([undefined, 'alice-gh']);
    expect(sent[1]!.credential).not.toBe(sent[0]!.credential);
    expect(github.requests.filter((r) => r.params?.grant_type === 'refresh_token')).toHaveLength(refreshes + 1);
  });

  it('lets the user disconnect on the connections page, signed in and with its form only: the next request asks to connect again', async () => {
    const client = await host('alice').open();
    const browser = browserOf('alice');
    const page = await browser.navigate(`${stack.gateway.url}/oauth/connections`, NOWHERE);
    expect(page).toMatchObject({ kind: 'page', status: 200 });
    const html = (page as { html: string }).html;
    expect(html).toMatch(/<strong>GitHub<\/strong>: connected <button/);
    const view = /name="view" value="([^"]+)"/.exec(html)![1]!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
    const connection = /name="connection" value="([^"]+)"/.exec(html)![1]!;
    const post = (origin: string, form: Record<string, string>) =>
      fetch(`${stack.gateway.url}/oauth/connections`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin, cookie: browser.jar.header(new URL(`${stack.gateway.url}/oauth/connections`)) },
        body: new URLSearchParams(form),
      });
    // A post from another site, or without the form's token, disconnects nothing.
    expect((await post('https://evil.example', { view, csrf, connection })).status).toBe(403);
    expect((await post(stack.gateway.url, { view, csrf: 'x'.repeat(43), connection })).status).toBe(403);
    expect((await client.callTool({ name: 'list_todos', arguments: {} })).isError).toBeFalsy();
    // Positive control: the page's own form.
    const done = await post(stack.gateway.url, { view, csrf, connection });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('GitHub disconnected');
    const error = await client.callTool({ name: 'list_todos', arguments: {} }).then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(UrlElicitationRequiredError);
    expect((error as UrlElicitationRequiredError).code).toBe(ErrorCode.UrlElicitationRequired);
    // Gone from the store; Bob's connection (the same provider) stays.
    const accounts = new ConnectedAccounts(store, IDP_TOKEN_KEY);
    expect(await accounts.has(connection, 'idp|alice')).toBe(false);
    expect(await accounts.has(connection, 'idp|bob')).toBe(true);
  });

  it('2026-07-28: answers a tools/call with an input-required result embedding the URL elicitation, or -32021 without the capability', async () => {
    const token = (await fullGrant(stack.gateway.url, stack.mcpUrl, { subject: 'carol', scope: 'todo:read' })).token.access_token;
    const call = (capabilities: Record<string, unknown>, id: number) =>
      fetch(stack.mcpUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'list_todos' },
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'list_todos', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': capabilities } } }),
      });
    const before = upstream.received.length;
    const asked = await call({ elicitation: { url: {} } }, 7);
    expect(asked.status).toBe(200);
    expect(await asked.json()).toEqual({
      jsonrpc: '2.0',
      id: 7,
      result: {
        resultType: 'input_required',
        inputRequests: {
          connect_account: {
            method: 'elicitation/create',
            params: { mode: 'url', message: 'Connect your GitHub account so that todo can act for you', url: expect.stringMatching(new RegExp(`^${stack.gateway.url}/oauth/connect\\?request=`)) },
          },
        },
      },
    });
    const refused = await call({ elicitation: { form: {} } }, 8);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ id: 8, error: { code: -32021, data: { requiredCapabilities: { elicitation: { url: {} } } } } });
    expect(upstream.received.length).toBe(before);
  });
});
