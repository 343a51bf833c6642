import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser, type AuthorizationOutcome } from '../support/as-browser.js';
import { authorizationUrl, CLIENT_REDIRECT, codeOf, fullGrant, pkcePair, registerClient, tokenRequest } from '../support/as-client.js';
import { startAsShared, startAsStack, type AsStack } from '../support/as-stack.js';

/**
 * Issue 25 item 7, the authorization side: every malformed or mismatched request is refused in
 * the RFC 6749 shape, before the redirect URI is trusted on a gateway page (no open redirect),
 * after it with error, state and iss; and each attack's positive control (the same request made
 * legal) succeeds, so the refusal is the rule's doing.
 */
describe('authorization server: authorization requests that must fail', () => {
  let stack: AsStack;
  let issuer: string;
  let resource: string;
  let clientId: string;

  beforeAll(async () => {
    stack = await startAsStack();
    issuer = stack.gateway.url;
    resource = stack.mcpUrl;
    clientId = await registerClient(issuer);
  });
  afterAll(async () => {
    await stack?.close();
  });

  const run = async (override: Record<string, string | null>, subject = 'alice') => {
    const { challenge } = pkcePair();
    const target = typeof override.redirect_uri === 'string' && override.redirect_uri.startsWith('http://127.0.0.1') ? override.redirect_uri : CLIENT_REDIRECT;
    return (await new TestBrowser({ subject }).authorize(authorizationUrl(issuer, { clientId, challenge, resource, override }), target)).outcome;
  };
  const page = (outcome: AuthorizationOutcome) => {
    if (outcome.kind !== 'page') throw new Error(`expected a gateway page, got ${JSON.stringify(outcome)}`);
    return outcome;
  };

  it('positive control: the legal request ends at the client with a code', async () => {
    expect(codeOf(await run({}))).toMatch(/^[\w-]{43}$/);
  });

  it.each([
    ['an unregistered redirect URI elsewhere', { redirect_uri: 'https://attacker.example/cb' }, 'invalid_request'],
    ['a redirect URI that only starts like the registered one', { redirect_uri: `${CLIENT_REDIRECT}/../evil` }, 'invalid_request'],
    ['an unknown client', { client_id: 'no-such-client' }, 'invalid_client'],
    ['no client at all', { client_id: null }, 'invalid_request'],
  ])('%s is shown on a gateway page, never redirected', async (_, override, code) => {
    const outcome = page(await run(override));
    expect(outcome.url.origin).toBe(new URL(issuer).origin);
    expect(outcome.status).toBeGreaterThanOrEqual(400);
    expect(outcome.html).toContain(`<code>${code}</code>`);
    expect(outcome.headers.get('x-frame-options')).toBe('DENY');
  });

  it('a loopback redirect URI may differ in port only (RFC 8252 §7.3), never in host or path', async () => {
    expect(codeOf(await run({ redirect_uri: 'http://127.0.0.1:9999/callback' }))).toMatch(/^[\w-]{43}$/);
    expect(page(await run({ redirect_uri: 'http://127.0.0.1:9999/other' })).html).toContain('invalid_request');
    expect(page(await run({ redirect_uri: 'http://localhost:7777/callback' })).html).toContain('invalid_request');
  });

  it.each([
    ['PKCE missing', { code_challenge: null }, 'invalid_request'],
    ['PKCE plain', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['PKCE method missing', { code_challenge_method: null }, 'invalid_request'],
    ['the implicit flow', { response_type: 'token' }, 'unsupported_response_type'],
    ['a resource that is no route here', { resource: 'https://other.example/mcp' }, 'invalid_target'],
    ['a malformed scope', { scope: 'todo:read "x"' }, 'invalid_scope'],
  ])('%s goes back to the client as an error with state and iss, and no code', async (_, override, code) => {
    const outcome = await run(override);
    expect(outcome).toMatchObject({ kind: 'redirect', error: code, iss: issuer });
    if (outcome.kind === 'redirect') {
      expect(outcome.code).toBeUndefined();
      if (!('state' in override)) expect(outcome.state).toBe('client-state-1');
    }
  });

  it('a parameter given twice is refused (RFC 6749 §3.1): client_id on a page, any other back at the client', async () => {
    const { challenge } = pkcePair();
    const twiceClient = authorizationUrl(issuer, { clientId, challenge, resource });
    twiceClient.search += '&client_id=someone-else';
    expect(page((await new TestBrowser().authorize(twiceClient, CLIENT_REDIRECT)).outcome).html).toContain('invalid_request');
    const twiceScope = authorizationUrl(issuer, { clientId, challenge, resource, scope: 'todo:read' });
    twiceScope.search += '&scope=todo:admin';
    const { outcome } = await new TestBrowser().authorize(twiceScope, CLIENT_REDIRECT);
    expect(outcome).toMatchObject({ kind: 'redirect', error: 'invalid_request', state: 'client-state-1' });
  });

  it('a callback whose state names no pending authorization is refused on a page (state mismatch)', async () => {
    const browser = new TestBrowser({ subject: 'alice' });
    const outcome = await browser.navigate(`${issuer}/oauth/callback?code=stolen&state=${'A'.repeat(43)}`, CLIENT_REDIRECT);
    expect(page(outcome as AuthorizationOutcome).html).toContain('invalid_request');
  });

  it("a callback finished in another browser than the one that started it is refused (login CSRF), and the owner's still works", async () => {
    const { challenge, verifier } = pkcePair();
    const owner = new TestBrowser({ subject: 'alice', stopAt: (url) => url.pathname === '/oauth/callback' });
    const stopped = await owner.navigate(authorizationUrl(issuer, { clientId, challenge, resource }), CLIENT_REDIRECT);
    expect(stopped.kind).toBe('stopped');
    const callback = (stopped as { url: URL }).url;
    const victim = new TestBrowser();
    expect(page((await victim.navigate(callback, CLIENT_REDIRECT)) as AuthorizationOutcome).html).toContain('access_denied');
    // Control: the browser that started it finishes it (consent already given for this client).
    const finished = await new TestBrowserSharingJar(owner).navigate(callback, CLIENT_REDIRECT);
    const code = codeOf(finished as AuthorizationOutcome);
    const token = await tokenRequest(issuer, { grant_type: 'authorization_code', code, code_verifier: verifier, client_id: clientId });
    expect(token.status).toBe(200);
    // A replayed callback finds the step taken.
    expect(page((await new TestBrowserSharingJar(owner).navigate(callback, CLIENT_REDIRECT)) as AuthorizationOutcome).html).toContain('already finished');
  });

  it("the IdP's refusal goes to the client as access_denied with its state and iss, and nothing is issued", async () => {
    const { challenge } = pkcePair();
    const browser = new TestBrowser({ subject: 'alice', stopAt: (url) => url.origin === stack.idp.issuer });
    const atIdp = (await browser.navigate(authorizationUrl(issuer, { clientId, challenge, resource, state: 'mine' }), CLIENT_REDIRECT)) as { url: URL };
    const state = atIdp.url.searchParams.get('state')!;
    const outcome = await new TestBrowserSharingJar(browser).navigate(`${issuer}/oauth/callback?error=access_denied&error_description=no&state=${state}`, CLIENT_REDIRECT);
    expect(outcome).toMatchObject({ kind: 'redirect', error: 'access_denied', state: 'mine', iss: issuer });
    expect((outcome as { code?: string }).code).toBeUndefined();
  });
});

/** A second TestBrowser that is the same user agent (same cookies) without the first one's stop rule. */
class TestBrowserSharingJar extends TestBrowser {
  constructor(original: TestBrowser) {
    super({});
    Object.assign(this, { jar: original.jar });
  }
}

describe('authorization server: the IdP is down', () => {
  let stack: AsStack;

  beforeAll(async () => {
    // Port 9 (discard) on loopback: nothing listens, so every connection is refused.
    stack = await startAsStack({ upstreamIssuer: 'http://127.0.0.1:9' });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('an authorization is answered temporarily_unavailable at the client, with state and iss', async () => {
    const issuer = stack.gateway.url;
    const clientId = await registerClient(issuer);
    const { challenge } = pkcePair();
    const { outcome } = await new TestBrowser().authorize(authorizationUrl(issuer, { clientId, challenge, resource: stack.mcpUrl }), CLIENT_REDIRECT);
    expect(outcome).toMatchObject({ kind: 'redirect', error: 'temporarily_unavailable', state: 'client-state-1', iss: issuer });
    expect((outcome as { code?: string }).code).toBeUndefined();
  });
});

describe('authorization server: the IdP goes down between login and code exchange', () => {
  it('the callback answers temporarily_unavailable at the client; the same flow with the IdP up is the control', async () => {
    const shared = await startAsShared();
    const stack = await startAsStack({ shared });
    try {
      const issuer = stack.gateway.url;
      expect((await fullGrant(issuer, stack.mcpUrl)).token.access_token).toBeTruthy();
      const clientId = await registerClient(issuer);
      const { challenge } = pkcePair();
      const browser = new TestBrowser({ subject: 'alice', stopAt: (url) => url.pathname === '/oauth/callback' });
      const stopped = (await browser.navigate(authorizationUrl(issuer, { clientId, challenge, resource: stack.mcpUrl }), CLIENT_REDIRECT)) as { url: URL };
      await stack.idp.close();
      const outcome = await new TestBrowserSharingJar(browser).navigate(stopped.url, CLIENT_REDIRECT);
      expect(outcome).toMatchObject({ kind: 'redirect', error: 'temporarily_unavailable', iss: issuer });
    } finally {
      await stack.close();
      await shared.upstream.close();
      await rm(shared.dir, { recursive: true, force: true });
    }
  });
});
