import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AADSTS9010010, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { TestBrowser } from '../support/as-browser.js';
import { leaked, startIdpAsStack, type IdpAsStack } from '../support/as-idp-stack.js';
import { authorizationUrl, CLIENT_REDIRECT, codeOf, pkcePair, registerClient } from '../support/as-client.js';
import { AsHostProvider, connectHost, type HostSession } from '../support/as-sdk-client.js';
import { startCimdServer, type CimdServer } from '../support/cimd-server.js';

/**
 * Issue 25 end to end against an IdP configured like Microsoft Entra ID (dev/idp-entra.ts): no
 * registration, `resource` refused (AADSTS9010010), one confidential client, a pairwise `sub`
 * with the user's `oid` beside it, `groups` in the ID token. The gateway fronts it with
 * `upstream.preset: entra`, and the real MCP SDK client runs its own flow through it, once with a
 * Client ID Metadata Document and once with dynamic registration.
 */

const APP = { clientId: '7c0e9a51-3d2b-4c5e-9f6a-1b2c3d4e5f60', clientSecret: 'entra-app-secret~value' };
/** Entra emits group object ids, not names. */
const TODO_ADMINS = '0b7d4c2e-5f1a-4e8b-9c3d-6a2b1e0f9d87';
const STAFF = 'c4e8a1f2-9b3d-4a6c-8e5f-2d1b0a9c8e76';

const GRANTS = `  grants:
    - scopes: [todo:read]
    - scopes: [todo:write]
      when: { claims: { groups: ${TODO_ADMINS} } }`;

async function startEntra(): Promise<DevIdp> {
  return startDevIdp({ scopes: [], entra: { client: APP, accounts: { alice: { groups: [TODO_ADMINS, STAFF] }, bob: { groups: [STAFF] } } } });
}

async function startStack(idp: DevIdp, metadataDocumentCa?: string): Promise<IdpAsStack> {
  const stack = await startIdpAsStack({
    upstream: ['    preset: entra', `    issuer: ${idp.issuer}`, `    clientId: ${APP.clientId}`],
    clientSecret: APP.clientSecret,
    grants: GRANTS,
    ...(metadataDocumentCa !== undefined ? { metadataDocumentCa } : {}),
  });
  return stack;
}

/** A TestBrowser that records every URL it goes to (it logs in wherever the IdP's `loginAs` says). */
function recordingBrowser(visited: URL[]): TestBrowser {
  return new TestBrowser({ route: (url) => (visited.push(new URL(url)), url) });
}

describe.each(['metadata document', 'dynamic registration'] as const)('SDK client, gateway as authorization server, Entra-like IdP (%s)', (registration) => {
  let idp: DevIdp;
  let stack: IdpAsStack;
  let cimd: CimdServer | undefined;
  let untrust: (() => void) | undefined;
  let documentUrl: string | undefined;
  const hosts: HostSession[] = [];
  const visited: URL[] = [];
  let alice: HostSession;

  const host = async (user: string): Promise<HostSession> => {
    idp.loginAs(user);
    const session = await connectHost(stack.mcpUrl, new AsHostProvider(recordingBrowser(visited), documentUrl));
    hosts.push(session);
    return session;
  };
  const idpAuthorizations = () => visited.filter((url) => url.origin === new URL(idp.issuer).origin && url.pathname === `${new URL(idp.issuer).pathname}/auth`);
  const tokenOf = (session: HostSession) => session.provider.tokens()!;
  const scopesOf = (session: HostSession) => String(decodeJwt(tokenOf(session).access_token).scope).split(' ').sort();

  beforeAll(async () => {
    idp = await startEntra();
    if (registration === 'metadata document') {
      cimd = await startCimdServer();
      untrust = cimd.trustInProcess();
      documentUrl = cimd.serveClient('/clients/sdk-host.json', {
        client_name: 'SDK host (metadata document)',
        redirect_uris: ['http://127.0.0.1:7778/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }, { headers: { 'cache-control': 'max-age=600' } });
    }
    stack = await startStack(idp);
    await idp.entra!.setRedirectUris([stack.callbackUrl]);
    alice = await host('alice');
  });
  afterAll(async () => {
    for (const session of hosts) await session.close();
    await stack?.close();
    await idp?.close();
    untrust?.();
    await cimd?.close();
  });

  it('discovers the gateway, registers, logs in at the IdP, is asked for consent, and gets a gateway token whose sub is entra|<oid>', async () => {
    const { provider } = alice;
    expect(provider.consentShown).toEqual([true]);
    const clientId = provider.clientInformation()!.client_id;
    if (registration === 'metadata document') {
      expect(clientId).toBe(documentUrl);
      expect(cimd!.requestsFor('/clients/sdk-host.json')).toHaveLength(1);
    } else expect(clientId).toMatch(/^[\w-]{24}$/);
    // The SDK found the gateway as the route's authorization server and asked it for this route.
    const start = visited[0]!;
    expect(start.origin + start.pathname).toBe(`${stack.issuer}/oauth/authorize`);
    expect(start.searchParams.get('resource')).toBe(stack.mcpUrl);
    expect(start.searchParams.get('client_id')).toBe(clientId);

    const claims = decodeJwt(tokenOf(alice).access_token);
    const oid = idp.entra!.claimsOf('alice').oid;
    expect(claims).toMatchObject({ iss: stack.issuer, aud: stack.mcpUrl, sub: `entra|${oid}`, client_id: clientId, scope: 'todo:read' });
    // Entra's pairwise `sub` (different in every app) is not what names the user.
    expect(String(claims.sub)).not.toContain(idp.entra!.subjectOf('alice'));
    expect(claims).not.toHaveProperty('groups');
  });

  it("goes to the IdP as the gateway's one app registration, with PKCE, state, nonce and offline_access, and never with resource", async () => {
    const [atIdp] = idpAuthorizations();
    expect(atIdp).toBeDefined();
    expect(Object.fromEntries(atIdp!.searchParams)).toMatchObject({ client_id: APP.clientId, redirect_uri: stack.callbackUrl, response_type: 'code', code_challenge_method: 'S256' });
    expect(atIdp!.searchParams.get('nonce')).toMatch(/^[\w-]{20,}$/);
    expect(atIdp!.searchParams.get('scope')!.split(' ')).toEqual(expect.arrayContaining(['openid', 'offline_access']));
    for (const url of idpAuthorizations()) expect(url.searchParams.has('resource')).toBe(false);
    // Control: the very request the gateway made, with the route as resource, is refused by the IdP.
    const withResource = new URL(atIdp!);
    withResource.searchParams.set('resource', stack.mcpUrl);
    const refused = await fetch(withResource, { redirect: 'manual' });
    await refused.body?.cancel();
    const back = new URL(refused.headers.get('location')!);
    expect(back.origin + back.pathname).toBe(stack.callbackUrl);
    expect(back.searchParams.get('error')).toBe('invalid_target');
    expect(back.searchParams.get('error_description')).toBe(AADSTS9010010);
  });

  it('lists tools through the gateway, on the real MCP server behind it', async () => {
    const before = stack.upstream.requests.length;
    const { tools } = await alice.withAuth(() => alice.client.listTools());
    expect(tools.map((t) => t.name)).toContain('list_todos');
    expect(stack.upstream.requests.slice(before).flatMap((r) => r.rpcMethods)).toContain('tools/list');
  });

  it('steps up: a member of the Entra group gets todo:write from grants, keeping todo:read, after a new IdP login and consent for it', async () => {
    const logins = idpAuthorizations().length;
    const result = await alice.withAuth(() => alice.client.callTool({ name: 'add_todo', arguments: { title: 'from the Entra e2e' } }));
    expect(result.isError).toBeFalsy();
    expect(idpAuthorizations().length).toBe(logins + 1);
    expect(alice.provider.requestedScopes[1]).toContain('todo:write');
    expect(alice.provider.consentShown).toEqual([true, true]);
    expect(scopesOf(alice)).toEqual(['todo:read', 'todo:write']);
    expect(stack.upstream.requests.flatMap((r) => r.toolNames)).toContain('add_todo');
  });

  it('refreshes when its access token is refused: a new refresh token, the scopes held, no login and no consent', async () => {
    const before = tokenOf(alice);
    const logins = idpAuthorizations().length;
    alice.provider.spoilAccessToken();
    const { tools } = await alice.withAuth(() => alice.client.listTools());
    expect(tools.length).toBeGreaterThan(0);
    const after = tokenOf(alice);
    expect(after.refresh_token).toBeDefined();
    expect(after.refresh_token).not.toBe(before.refresh_token);
    expect(after.access_token).not.toBe(before.access_token);
    expect(scopesOf(alice)).toEqual(['todo:read', 'todo:write']);
    expect(idpAuthorizations().length).toBe(logins);
    expect(alice.provider.consentShown).toEqual([true, true]);
  });

  it('a user outside the group logs in and lists tools, but a step-up to todo:write gets him no such scope and the tool is never called', async () => {
    const bob = await host('bob');
    expect(bob.provider.consentShown).toEqual([true]);
    expect(decodeJwt(tokenOf(bob).access_token)).toMatchObject({ sub: `entra|${idp.entra!.claimsOf('bob').oid}`, scope: 'todo:read' });
    expect((await bob.withAuth(() => bob.client.listTools())).tools.length).toBeGreaterThan(0);
    const calls = stack.upstream.requests.flatMap((r) => r.toolNames).filter((name) => name === 'add_todo').length;
    const logins = idpAuthorizations().length;

    const refused = await bob.withAuth(() => bob.client.callTool({ name: 'add_todo', arguments: { title: 'not bob' } })).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StreamableHTTPError);
    expect((refused as StreamableHTTPError).code).toBe(403);
    // He did log in again and asked for todo:write; grants kept it from him (RFC 6749 §3.3: less may be granted).
    expect(idpAuthorizations().length).toBe(logins + 1);
    expect(bob.provider.requestedScopes[1]).toContain('todo:write');
    expect(scopesOf(bob)).toEqual(['todo:read']);
    expect(stack.logs.filter((l) => l.event === 'authorization' && l.subject === `entra|${idp.entra!.claimsOf('bob').oid}`).map((l) => l.scopes)).toEqual([['todo:read'], ['todo:read']]);
    expect(stack.upstream.requests.flatMap((r) => r.toolNames).filter((name) => name === 'add_todo')).toHaveLength(calls);
  });

  it("keeps the IdP's tokens sealed for each user, and they never reach the MCP client nor the MCP server", async () => {
    for (const [user, session] of [['alice', alice], ['bob', hosts[1]!]] as const) {
      const kept = await stack.idpTokensOf(`entra|${idp.entra!.claimsOf(user).oid}`);
      expect(kept).toMatchObject({ accessToken: expect.any(String), refreshToken: expect.any(String), idToken: expect.any(String) });
      // They are the IdP's own: its ID token for the gateway's app, with the pairwise sub.
      expect(decodeJwt(kept!.idToken!)).toMatchObject({ aud: APP.clientId, sub: idp.entra!.subjectOf(user), oid: idp.entra!.claimsOf(user).oid });
      const secrets = [kept!.accessToken, kept!.refreshToken, kept!.idToken];
      expect(leaked(session.provider.tokenHistory, secrets)).toEqual([]);
      expect(leaked(stack.upstream.requests, secrets)).toEqual([]);
    }
  });
});

describe('gateway as authorization server, Entra-like IdP: the IdP refuses or is down', () => {
  let idp: DevIdp;
  let stack: IdpAsStack;
  let clientId: string;

  beforeAll(async () => {
    idp = await startEntra();
    stack = await startStack(idp);
    await idp.entra!.setRedirectUris([stack.callbackUrl]);
    clientId = await registerClient(stack.issuer);
  });
  afterAll(async () => {
    idp?.failAuthorizations(undefined);
    await stack?.close();
    await idp?.close();
  });

  const request = (state: string) => authorizationUrl(stack.issuer, { clientId, challenge: pkcePair().challenge, resource: stack.mcpUrl, state });
  const oidOf = (user: string) => idp.entra!.claimsOf(user).oid;

  it('positive control: a login ends at the client with a code', async () => {
    idp.loginAs('carol');
    const { outcome } = await new TestBrowser().authorize(request('ok-1'), CLIENT_REDIRECT);
    expect(codeOf(outcome)).toMatch(/^[\w-]{43}$/);
    expect(outcome).toMatchObject({ state: 'ok-1', iss: stack.issuer });
  });

  it("the IdP's access_denied reaches the client with its state and iss, and nothing is issued; the same login allowed is the control", async () => {
    idp.loginAs('dave');
    idp.failAuthorizations({ error: 'access_denied', error_description: 'AADSTS65004: User declined to consent to access the app.' });
    const before = stack.issued();
    const { outcome } = await new TestBrowser().authorize(request('denied-1'), CLIENT_REDIRECT);
    expect(outcome).toMatchObject({ kind: 'redirect', error: 'access_denied', state: 'denied-1', iss: stack.issuer });
    expect(outcome).not.toHaveProperty('code');
    // The IdP's own description (which may name the app registration) is not passed on.
    expect((outcome as { errorDescription?: string }).errorDescription).not.toContain('AADSTS');
    expect(stack.issued()).toEqual(before);
    expect(await stack.idpTokensOf(`entra|${oidOf('dave')}`)).toBeUndefined();

    idp.failAuthorizations(undefined);
    expect(codeOf((await new TestBrowser().authorize(request('denied-2'), CLIENT_REDIRECT)).outcome)).toMatch(/^[\w-]{43}$/);
    expect(stack.issued().codes).toBe(before.codes + 1);
  });

  it('the IdP down between the login and the code exchange is temporarily_unavailable at the client, and nothing is issued', async () => {
    idp.loginAs('erin');
    let stop = true;
    const browser = new TestBrowser({ stopAt: (url) => stop && url.href.startsWith(stack.callbackUrl) });
    const atCallback = await browser.navigate(request('down-1'), CLIENT_REDIRECT);
    expect(atCallback.kind).toBe('stopped');
    const before = stack.issued();
    await idp.down();
    try {
      stop = false;
      const outcome = await browser.navigate((atCallback as { url: URL }).url, CLIENT_REDIRECT);
      expect(outcome).toMatchObject({ kind: 'redirect', error: 'temporarily_unavailable', state: 'down-1', iss: stack.issuer });
      expect(outcome).not.toHaveProperty('code');
      expect(stack.issued()).toEqual(before);
      expect(await stack.idpTokensOf(`entra|${oidOf('erin')}`)).toBeUndefined();
    } finally {
      await idp.up();
    }
    // Control: back up, the same user's next login goes through.
    expect(codeOf((await new TestBrowser().authorize(request('down-2'), CLIENT_REDIRECT)).outcome)).toMatch(/^[\w-]{43}$/);
    expect(await stack.idpTokensOf(`entra|${oidOf('erin')}`)).toBeDefined();
  });

  it('a gateway that has never reached the IdP answers temporarily_unavailable at the client, and logs in once the IdP is back', async () => {
    await idp.down();
    let fresh: IdpAsStack | undefined;
    try {
      fresh = await startStack(idp);
      const freshClient = await registerClient(fresh.issuer);
      const url = (state: string) => authorizationUrl(fresh!.issuer, { clientId: freshClient, challenge: pkcePair().challenge, resource: fresh!.mcpUrl, state });
      const { outcome } = await new TestBrowser().authorize(url('never-1'), CLIENT_REDIRECT);
      expect(outcome).toMatchObject({ kind: 'redirect', error: 'temporarily_unavailable', state: 'never-1', iss: fresh.issuer });
      expect(outcome).not.toHaveProperty('code');
      expect(fresh.issued()).toEqual({ codes: 0, tokens: 0 });

      await idp.up();
      await idp.entra!.setRedirectUris([stack.callbackUrl, fresh.callbackUrl]);
      idp.loginAs('carol');
      // Discovery is retried at most every few seconds while it fails (src/authorization-server/idp-configuration.ts).
      await expect.poll(async () => (await new TestBrowser().authorize(url('never-2'), CLIENT_REDIRECT)).outcome, { timeout: 15_000, interval: 1_000 }).toMatchObject({ kind: 'redirect', code: expect.any(String) });
    } finally {
      await idp.up();
      await fresh?.close();
    }
  }, 30_000);
});
