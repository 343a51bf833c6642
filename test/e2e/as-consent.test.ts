import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser, type AuthorizationOutcome, type ConsentForm } from '../support/as-browser.js';
import { authorizationUrl, CLIENT_REDIRECT, codeOf, fullGrant, pkcePair, registerClient, tokenRequest } from '../support/as-client.js';
import { startAsStack, type AsStack } from '../support/as-stack.js';

/**
 * Issue 25 item 3: the gateway's own consent page, per user and client (the confused deputy of
 * MCP authorization §Security Considerations, FastMCP GHSA-c2jp-c369-7pvx). A forged decision is
 * refused with nothing sent to the client; one client's approval never covers another.
 */
describe('authorization server: consent', () => {
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

  /** Starts an authorization for `clientId` in `browser` and stops at the consent page. */
  const consentFor = async (browser: TestBrowser, clientId: string, scope = 'todo:read'): Promise<ConsentForm> => {
    const { challenge } = pkcePair();
    const reached = await browser.navigate(authorizationUrl(issuer, { clientId, challenge, resource, scope }), CLIENT_REDIRECT);
    if (reached.kind !== 'consent') throw new Error(`expected the consent page, got ${JSON.stringify(reached)}`);
    return reached.form;
  };

  it('names the client (escaped), its redirect host and the scopes, in a page that cannot be framed or run script', async () => {
    const clientId = await registerClient(issuer, { client_name: '<script>alert("pwned")</script> & Co' });
    const form = await consentFor(new TestBrowser({ subject: 'alice' }), clientId, 'todo:read todo:write');
    expect(form.html).toContain('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; Co');
    expect(form.html).not.toContain('<script>');
    expect(form.html).toContain(`<code>${clientId}</code>`);
    expect(form.html).toContain('<code>127.0.0.1:7777</code>');
    expect(form.html).toContain('<code>todo:read</code>');
    expect(form.html).toContain('<code>todo:write</code>');
    expect(form.headers.get('x-frame-options')).toBe('DENY');
    expect(form.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(form.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(form.headers.get('cache-control')).toBe('no-store');
  });

  it('a refusal goes to the client as access_denied, and nothing is issued', async () => {
    const clientId = await registerClient(issuer);
    const browser = new TestBrowser({ subject: 'alice' });
    const outcome = await browser.decide(await consentFor(browser, clientId), 'deny', CLIENT_REDIRECT);
    expect(outcome).toMatchObject({ kind: 'redirect', error: 'access_denied', state: 'client-state-1', iss: issuer });
    expect((outcome as { code?: string }).code).toBeUndefined();
  });

  it.each([
    ['a wrong CSRF token', { csrf: 'B'.repeat(43) }],
    ['no CSRF token', { csrf: '' }],
    ['a post from another origin', { origin: 'https://attacker.example' }],
  ])('%s is refused on a page with nothing sent to the client; the real form still works after it', async (_, tamper) => {
    const clientId = await registerClient(issuer);
    const browser = new TestBrowser({ subject: 'alice' });
    const form = await consentFor(browser, clientId);
    const forged = await browser.decide(form, 'approve', CLIENT_REDIRECT, tamper);
    expect(forged).toMatchObject({ kind: 'page', status: 403 });
    expect((forged as AuthorizationOutcome & { html: string }).html).toContain('access_denied');
    // Control: the same user's genuine decision is still taken.
    expect(codeOf((await browser.decide(form, 'approve', CLIENT_REDIRECT)) as AuthorizationOutcome)).toMatch(/^[\w-]{43}$/);
  });

  it("another browser cannot post the decision even with the form's fields (no binding or CSRF cookie)", async () => {
    const clientId = await registerClient(issuer);
    const browser = new TestBrowser({ subject: 'alice' });
    const form = await consentFor(browser, clientId);
    const forged = await new TestBrowser().decide(form, 'approve', CLIENT_REDIRECT);
    expect(forged).toMatchObject({ kind: 'page', status: 403 });
    expect(codeOf((await browser.decide(form, 'approve', CLIENT_REDIRECT)) as AuthorizationOutcome)).toMatch(/^[\w-]{43}$/);
  });

  it('a decision is taken once: a second post of the same form finds it decided', async () => {
    const clientId = await registerClient(issuer);
    const browser = new TestBrowser({ subject: 'alice' });
    const form = await consentFor(browser, clientId);
    codeOf((await browser.decide(form, 'approve', CLIENT_REDIRECT)) as AuthorizationOutcome);
    expect(await browser.decide(form, 'approve', CLIENT_REDIRECT)).toMatchObject({ kind: 'page', status: 400 });
  });

  it("approval is remembered for this user and client only: the same client goes through, a second client and another user are asked", async () => {
    const first = await fullGrant(issuer, resource, { subject: 'alice', scope: 'todo:read' });
    expect(first.consentShown).toBe(true);
    const again = await fullGrant(issuer, resource, { subject: 'alice', scope: 'todo:read', clientId: first.clientId });
    expect(again.consentShown).toBe(false);
    const second = await fullGrant(issuer, resource, { subject: 'alice', scope: 'todo:read' });
    expect(second.consentShown).toBe(true);
    const bob = await fullGrant(issuer, resource, { subject: 'bob', scope: 'todo:read', clientId: first.clientId });
    expect(bob.consentShown).toBe(true);
  });

  it('step-up: asking for one new scope shows consent for it and grants it with the scopes held', async () => {
    const first = await fullGrant(issuer, resource, { subject: 'alice', scope: 'todo:read' });
    const browser = new TestBrowser({ subject: 'alice' });
    const form = await consentFor(browser, first.clientId, 'todo:write');
    expect(form.html).toMatch(/<code>todo:write<\/code> <span class="new">\(new\)<\/span>/);
    expect(form.html).toMatch(/<code>todo:read<\/code><\/li>/);
    const outcome = await browser.decide(form, 'approve', CLIENT_REDIRECT);
    expect(codeOf(outcome as AuthorizationOutcome)).toBeTruthy();
    // The same step-up again: nothing new to approve, so no page, and both scopes.
    const repeat = await fullGrant(issuer, resource, { subject: 'alice', scope: 'todo:write', clientId: first.clientId });
    expect(repeat.consentShown).toBe(false);
    expect(repeat.token.scope.split(' ').sort()).toEqual(['todo:read', 'todo:write']);
    expect(String(decodeJwt(repeat.token.access_token).scope).split(' ').sort()).toEqual(['todo:read', 'todo:write']);
  });

  it('a user whose claims grant none of the requested scopes is refused with access_denied', async () => {
    const clientId = await registerClient(issuer);
    const { challenge } = pkcePair();
    const { outcome } = await new TestBrowser({ subject: 'bob' }).authorize(authorizationUrl(issuer, { clientId, challenge, resource, scope: 'todo:admin' }), CLIENT_REDIRECT);
    expect(outcome).toMatchObject({ kind: 'redirect', error: 'access_denied' });
    const token = await tokenRequest(issuer, { grant_type: 'authorization_code', code: 'none', code_verifier: 'x'.repeat(43), client_id: clientId });
    expect(token.body.access_token).toBeUndefined();
  });
});
