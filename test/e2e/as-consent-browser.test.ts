/**
 * Issue 25 item 3, in a real browser (Debian's Chromium through playwright-core, see
 * test/support/browser.ts): the gateway's consent page as a person meets it. The browser opens
 * the authorization URL an MCP client builds (PKCE S256, state, resource), is logged in at the
 * dev IdP without a screen, and lands on the consent page. The page shows, approves, refuses,
 * is remembered per client only, and resists what a browser really does for an attacker: framing
 * from another origin, a form another page auto-submits with the victim's cookies, and a post
 * replayed from another browser context. test/e2e/as-consent.test.ts holds the same rules over
 * raw HTTP; here it is the browser that decides what is sent (cookies, Origin, Sec-Fetch-Site)
 * and what is shown.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { decodeJwt } from 'jose';
import type { BrowserContext, Page, Response as BrowserResponse } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrowser, type BrowserHarness } from '../support/browser.js';
import { authorizationUrl, pkcePair, registerClient, tokenRequest } from '../support/as-client.js';
import { startAsStack, type AsStack } from '../support/as-stack.js';
import { closeLocalServers, listenLocal } from '../support/local-servers.js';

const ALLOW = { name: 'Allow' } as const;
const DENY = { name: 'Deny' } as const;

/** A consent page reached in a browser tab, with what the client must keep to finish the flow. */
interface Reached {
  readonly page: Page;
  readonly response: BrowserResponse;
  readonly verifier: string;
  readonly state: string;
  readonly clientId: string;
}

// Each test drives several page loads through the IdP on a shared machine: room, but bounded.
describe('authorization server: the consent page in a real browser', { timeout: 60_000 }, () => {
  let stack: AsStack;
  let issuer: string;
  let resource: string;
  let browser: BrowserHarness;
  /** Contexts opened on the same Chromium, closed in afterAll. */
  const contexts: BrowserContext[] = [];
  /** The client's loopback redirect URI, and every request it received. */
  let redirectUri: string;
  const received: URL[] = [];
  /** Another origin on the same host (same site: the browser sends 127.0.0.1's cookies along). */
  let attackerSameSite: string;
  /** The same server named localhost: another site for the browser (SameSite cookies stay home). */
  let attackerCrossSite: string;
  const attackerPages = new Map<string, string>();
  /** Every consent page the victim's browser asked for (GET /oauth/consent). */
  const consentViews: string[] = [];

  beforeAll(async () => {
    stack = await startAsStack();
    issuer = stack.gateway.url;
    resource = stack.mcpUrl;
    const client = await listenLocal(
      createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://client.invalid');
        // Only the redirect URI counts: the browser also asks for /favicon.ico on its own.
        if (url.pathname === '/callback') received.push(url);
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end('<!doctype html><title>Client</title><p>You can close this window.</p>');
      }),
    );
    redirectUri = `${client}/callback`;
    attackerSameSite = await listenLocal(
      createServer((req, res) => {
        const html = attackerPages.get(new URL(req.url ?? '/', 'http://attacker.invalid').pathname);
        res.writeHead(html === undefined ? 404 : 200, { 'content-type': 'text/html; charset=utf-8' }).end(html ?? 'not found');
      }),
    );
    attackerCrossSite = attackerSameSite.replace('127.0.0.1', 'localhost');
    browser = await startBrowser({ timeoutMs: 20_000 });
    browser.context.on('request', (request) => {
      const url = new URL(request.url());
      if (url.origin === new URL(issuer).origin && url.pathname === '/oauth/consent' && request.method() === 'GET') consentViews.push(url.href);
    });
  }, 60_000);
  afterAll(async () => {
    await Promise.all(contexts.map((context) => context.close()));
    await browser?.close();
    await closeLocalServers();
    await stack?.close();
  });

  /** A page on the attacker's server; `origin` chooses the same-site or the cross-site name. */
  const attackerPage = (html: string, origin = attackerSameSite): string => {
    const path = `/${randomBytes(6).toString('hex')}`;
    attackerPages.set(path, html);
    return `${origin}${path}`;
  };

  /** Another browser context on the same Chromium: its own cookies, like another person's browser. */
  const otherContext = async (): Promise<BrowserContext> => {
    const chromium = browser.context.browser();
    if (!chromium) throw new Error('the harness context has no browser to open another context in');
    const context = await chromium.newContext();
    contexts.push(context);
    return context;
  };

  const register = (name: string) => registerClient(issuer, { client_name: name, redirect_uris: [redirectUri] });

  /** Opens the client's authorization URL in `page`, as the MCP SDK builds it, and follows the redirects. */
  const authorize = async (page: Page, clientId: string, scope = 'todo:read'): Promise<Reached> => {
    const { verifier, challenge } = pkcePair();
    const state = randomBytes(16).toString('base64url');
    const response = await page.goto(authorizationUrl(issuer, { clientId, challenge, resource, scope, state, redirectUri }).href);
    if (!response) throw new Error('no response for the authorization URL');
    return { page, response, verifier, state, clientId };
  };

  /** The same, expecting the consent page. */
  const reachConsent = async (page: Page, clientId: string, scope?: string): Promise<Reached> => {
    const reached = await authorize(page, clientId, scope);
    const url = new URL(page.url());
    if (url.origin !== new URL(issuer).origin || url.pathname !== '/oauth/consent') throw new Error(`expected the consent page, the browser is at ${page.url()}`);
    expect(reached.response.status()).toBe(200);
    return reached;
  };

  /** Clicks one of the page's buttons and waits for the browser to reach the client. */
  const decide = async (page: Page, button: typeof ALLOW | typeof DENY): Promise<URL> => {
    const before = received.length;
    await Promise.all([page.waitForURL((url) => url.href.startsWith(redirectUri)), page.getByRole('button', button).click()]);
    expect(received).toHaveLength(before + 1);
    return received.at(-1)!;
  };

  const exchange = (reached: Reached, code: string) =>
    tokenRequest(issuer, { grant_type: 'authorization_code', code, code_verifier: reached.verifier, client_id: reached.clientId, redirect_uri: redirectUri, resource });

  /** The consent form's hidden fields, as any page script or a thief could read them. */
  const formFields = async (page: Page) => ({
    action: new URL((await page.locator('form').getAttribute('action')) ?? '', page.url()).href,
    request: (await page.locator('input[name="request"]').getAttribute('value')) ?? '',
    csrf: (await page.locator('input[name="csrf"]').getAttribute('value')) ?? '',
  });

  describe('a person approves', () => {
    let reached: Reached;
    const name = 'Browser Test Client <b>bold</b> & Co';

    it('sees the client by name and id, where the answer goes, and each scope, in a form with named buttons', async () => {
      const clientId = await register(name);
      reached = await reachConsent(browser.page, clientId, 'todo:read todo:write');
      const { page } = reached;
      await expect(page.title()).resolves.toBe(`Allow ${name}?`);
      // The name is the client's own claim, shown as text: its markup is not markup here.
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(`Allow ${name} to use MCP servers as you?`);
      expect(await page.locator('main b').count()).toBe(0);
      expect(await page.getByRole('term').allTextContents()).toEqual(['Application', 'Answer sent to']);
      const [application, destination] = await page.getByRole('definition').allTextContents();
      expect(application).toContain(`client id ${clientId}`);
      expect(destination).toBe(new URL(redirectUri).host);
      expect(await page.getByText('You are signed in as').textContent()).toContain('alice');
      const permissions = page.getByRole('list', { name: 'It asks for these permissions' });
      expect(await permissions.getByRole('listitem').allTextContents()).toEqual(['todo:read (new)', 'todo:write (new)']);
      expect(await page.getByRole('heading', { level: 2 }).textContent()).toBe('It asks for these permissions');
      // A real form with two submit buttons in a named group: usable by keyboard and screen reader, no script.
      const decision = page.getByRole('group', { name: 'Your decision' });
      expect(await decision.getByRole('button').allTextContents()).toEqual(['Allow', 'Deny']);
      expect(await page.locator('form').getAttribute('method')).toBe('post');
      expect(await page.locator('script').count()).toBe(0);
      expect(received).toHaveLength(0);
    });

    it('allows: the redirect URI gets a code with the state and iss, and the code buys a token (positive control)', async () => {
      const answer = await decide(reached.page, ALLOW);
      expect(answer.pathname).toBe('/callback');
      expect(answer.searchParams.get('state')).toBe(reached.state);
      expect(answer.searchParams.get('iss')).toBe(issuer);
      expect(answer.searchParams.get('error')).toBeNull();
      const token = await exchange(reached, answer.searchParams.get('code') ?? '');
      expect(token.status).toBe(200);
      expect(decodeJwt(String(token.body.access_token))).toMatchObject({ iss: issuer, aud: resource, sub: 'idp|alice', client_id: reached.clientId, scope: 'todo:read todo:write' });
    });

    it("is not asked again by the same client, and is asked again by another client (no inherited consent)", async () => {
      const viewsBefore = consentViews.length;
      const again = await authorize(browser.page, reached.clientId, 'todo:read todo:write');
      expect(consentViews).toHaveLength(viewsBefore);
      const answer = received.at(-1)!;
      expect(new URL(again.page.url()).pathname).toBe('/callback');
      expect(answer.searchParams.get('state')).toBe(again.state);
      expect((await exchange(again, answer.searchParams.get('code') ?? '')).status).toBe(200);

      const otherId = await register('Second Client');
      const second = await reachConsent(browser.page, otherId, 'todo:read');
      expect(consentViews).toHaveLength(viewsBefore + 1);
      expect(await second.page.getByRole('heading', { level: 1 }).textContent()).toBe('Allow Second Client to use MCP servers as you?');
      expect(await second.page.getByRole('definition').first().textContent()).toContain(otherId);
      expect(await second.page.getByRole('listitem').allTextContents()).toEqual(['todo:read (new)']);
      const code = (await decide(second.page, ALLOW)).searchParams.get('code') ?? '';
      expect(decodeJwt(String((await exchange(second, code)).body.access_token)).client_id).toBe(otherId);
    });
  });

  it('refuses: the redirect URI gets access_denied with the state and iss, no code, and the refusal is not remembered', async () => {
    const clientId = await register('Refused Client');
    const reached = await reachConsent(browser.page, clientId);
    const answer = await decide(reached.page, DENY);
    expect(answer.searchParams.get('error')).toBe('access_denied');
    expect(answer.searchParams.get('state')).toBe(reached.state);
    expect(answer.searchParams.get('iss')).toBe(issuer);
    expect(answer.searchParams.get('code')).toBeNull();
    // Asked again next time, not silently refused nor silently allowed.
    const again = await reachConsent(browser.page, clientId);
    expect(await again.page.getByRole('button', ALLOW).isVisible()).toBe(true);
  });

  it("carries X-Frame-Options DENY and CSP frame-ancestors 'none', and another origin's frame of it stays empty", async () => {
    const clientId = await register('Framed Client');
    const { page, response } = await reachConsent(browser.page, clientId);
    const before = received.length;
    const headers = response.headers();
    expect(headers['x-frame-options']).toBe('DENY');
    const csp = headers['content-security-policy'] ?? '';
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain(`form-action 'self' ${new URL(redirectUri).origin}`);
    expect(headers['cache-control']).toBe('no-store');

    const framed = async (src: string) => {
      const tab = await browser.newPage();
      try {
        const served = tab.waitForResponse((r) => r.url() === src);
        await tab.goto(attackerPage(`<!doctype html><title>Win a prize</title><iframe src="${src}" width="800" height="600"></iframe>`), { waitUntil: 'load' });
        const status = (await served).status();
        const frame = tab.frames().find((f) => f !== tab.mainFrame());
        const text = frame ? await frame.evaluate<string>('document.body ? document.body.innerText : ""').catch(() => '') : '';
        return { status, text, url: frame?.url() };
      } finally {
        await tab.close();
      }
    };
    // The gateway did serve the page to the frame: the browser refused to show it.
    const consent = await framed(page.url());
    expect(consent.status).toBe(200);
    expect(consent.text).not.toContain('Allow');
    expect(consent.url).toBe('chrome-error://chromewebdata/');
    // Control: a gateway document without those headers shows in the same frame.
    const metadata = await framed(`${issuer}/.well-known/oauth-authorization-server`);
    expect(metadata.text).toContain(issuer);
    expect(metadata.url).toBe(`${issuer}/.well-known/oauth-authorization-server`);
    expect(received).toHaveLength(before);
  });

  describe('a forged decision', () => {
    /** A page that posts `fields` to the consent endpoint as soon as it loads. */
    const autoSubmit = (action: string, fields: Record<string, string>, hideOrigin = false) =>
      `<!doctype html><title>Win a prize</title>${hideOrigin ? '<meta name="referrer" content="no-referrer">' : ''}<form method="post" action="${action}">${Object.entries(fields)
        .map(([key, value]) => `<input type="hidden" name="${key}" value="${value}">`)
        .join('')}</form><script>document.forms[0].submit()</script>`;

    /** Loads `url` in a new tab of `context` and returns the consent endpoint's answer to the POST it makes. */
    const posted = async (context: BrowserContext, url: string, run?: (tab: Page) => Promise<void>) => {
      const tab = await context.newPage();
      try {
        const answer = tab.waitForResponse((r) => r.url() === `${issuer}/oauth/consent` && r.request().method() === 'POST');
        if (run) await run(tab);
        // 'commit': the page's script starts another navigation before its own load.
        else await tab.goto(url, { waitUntil: 'commit' });
        const response = await answer;
        await tab.waitForLoadState();
        return { status: response.status(), text: await tab.locator('body').innerText(), sent: await response.request().allHeaders(), shownAt: tab.url() };
      } finally {
        await tab.close();
      }
    };

    it("from a page on another origin, with the victim's cookies and a guessed, stolen or missing token, or even the right one, is refused and nothing reaches the client", async () => {
      const clientId = await register('Victim Client');
      const victim = await reachConsent(browser.page, clientId);
      const real = await formFields(victim.page);
      // The attacker's own consent page, in his own browser, gives him a real token of the gateway's.
      const attacker = await otherContext();
      stack.idp.loginAs('mallory');
      let stolen: Awaited<ReturnType<typeof formFields>>;
      try {
        stolen = await formFields((await reachConsent(await attacker.newPage(), clientId)).page);
      } finally {
        stack.idp.loginAs(undefined);
      }
      expect(stolen.csrf).not.toBe(real.csrf);
      const before = received.length;
      const attempts: [string, string, Record<string, string>, hideOrigin?: boolean][] = [
        ['a guessed token, same site', attackerSameSite, { request: real.request, csrf: randomBytes(32).toString('base64url'), decision: 'approve' }],
        ["the attacker's own token, same site", attackerSameSite, { request: real.request, csrf: stolen.csrf, decision: 'approve' }],
        ['no token, same site', attackerSameSite, { request: real.request, decision: 'approve' }],
        ['the right token, same site', attackerSameSite, { request: real.request, csrf: real.csrf, decision: 'approve' }],
        ["the attacker's request and token, same site", attackerSameSite, { request: stolen.request, csrf: stolen.csrf, decision: 'approve' }],
        ['the right token, cross site', attackerCrossSite, { request: real.request, csrf: real.csrf, decision: 'approve' }],
        // A page may hide where it is: under no-referrer the browser sends `Origin: null`.
        ['the right token, same site, origin hidden', attackerSameSite, { request: real.request, csrf: real.csrf, decision: 'approve' }, true],
      ];
      for (const [label, origin, fields, hideOrigin] of attempts) {
        const forged = await posted(browser.context, attackerPage(autoSubmit(real.action, fields, hideOrigin), origin));
        expect({ label, status: forged.status }).toEqual({ label, status: 403 });
        expect(forged.text).toContain('access_denied');
        expect(forged.text).toContain('the consent form was not sent from this page');
        expect(forged.shownAt).toBe(real.action);
        // The browser told the gateway where the post came from.
        expect(forged.sent.origin).toBe(hideOrigin ? 'null' : origin);
        expect(forged.sent['sec-fetch-site']).toBe(origin === attackerSameSite ? 'same-site' : 'cross-site');
        // Same site, the victim's cookies went along (so only Origin and the token stand in the
        // way); cross site, SameSite kept both the binding and the CSRF cookie at home.
        const cookie = forged.sent.cookie ?? '';
        if (origin === attackerSameSite) expect(cookie).toMatch(/mcp-gateway-auth=.*mcp-gateway-consent=|mcp-gateway-consent=.*mcp-gateway-auth=/);
        else expect(cookie).not.toMatch(/mcp-gateway-(auth|consent)=/);
      }
      expect(received).toHaveLength(before);
      // Control: nothing was decided; the victim's own click still goes through.
      const answer = await decide(victim.page, ALLOW);
      expect(answer.searchParams.get('state')).toBe(victim.state);
      expect((await exchange(victim, answer.searchParams.get('code') ?? '')).status).toBe(200);
    });

    it('from the page itself with a wrong or missing token is refused; the page reloaded then works', async () => {
      const clientId = await register('Tampered Client');
      const reached = await reachConsent(browser.page, clientId);
      const { page } = reached;
      const consentUrl = page.url();
      const before = received.length;
      for (const tamper of [`q.value = ${JSON.stringify(randomBytes(32).toString('base64url'))}`, 'q.remove()']) {
        // As a script injected into the page would (this page runs none of its own).
        await page.evaluate(`{ const q = document.querySelector('input[name="csrf"]'); ${tamper}; }`);
        const answer = page.waitForResponse((r) => r.url() === `${issuer}/oauth/consent` && r.request().method() === 'POST');
        await page.getByRole('button', ALLOW).click();
        const response = await answer;
        await page.waitForLoadState();
        expect(response.status()).toBe(403);
        expect((await response.request().allHeaders())['sec-fetch-site']).toBe('same-origin');
        expect(await page.locator('body').innerText()).toContain('the consent form could not be verified');
        await page.goto(consentUrl);
      }
      expect(received).toHaveLength(before);
      const answer = await decide(page, ALLOW);
      expect(answer.searchParams.get('state')).toBe(reached.state);
      expect((await exchange(reached, answer.searchParams.get('code') ?? '')).status).toBe(200);
    });

    it("replayed from another browser context with the right token but not the victim's cookies is refused", async () => {
      const clientId = await register('Replayed Client');
      const victim = await reachConsent(browser.page, clientId);
      const real = await formFields(victim.page);
      const fields = { request: real.request, csrf: real.csrf, decision: 'approve' };
      const before = received.length;
      const replays = {
        // A fresh context without any cookie, posting from a page of the gateway's own origin (its
        // metadata document: no referrer policy, so the browser sends the real Origin), so only
        // the missing cookies can stop it.
        'a fresh browser': async (tab: Page) => {
          await tab.goto(`${issuer}/.well-known/oauth-authorization-server`);
          await tab.evaluate(
            `{ const f = document.createElement('form'); f.method = 'post'; f.action = ${JSON.stringify(real.action)};
               for (const [k, v] of ${JSON.stringify(Object.entries(fields))}) {
                 const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.append(i);
               }
               document.body.append(f); setTimeout(() => f.submit()); }`,
          );
        },
        // The attacker's own browser, signed in as himself, on his own consent page, with the
        // victim's request and token put in its form: his cookies are not the victim's.
        "the attacker's signed-in browser": async (tab: Page) => {
          stack.idp.loginAs('mallory');
          try {
            await reachConsent(tab, clientId);
          } finally {
            stack.idp.loginAs(undefined);
          }
          await tab.evaluate(`{ for (const [k, v] of ${JSON.stringify(Object.entries({ request: real.request, csrf: real.csrf }))}) document.querySelector('input[name="' + k + '"]').value = v; }`);
          await tab.getByRole('button', ALLOW).click();
        },
      };
      for (const [label, run] of Object.entries(replays)) {
        const replay = await posted(await otherContext(), '', run);
        expect({ label, status: replay.status }).toEqual({ label, status: 403 });
        expect(replay.sent.origin).toBe(new URL(issuer).origin);
        expect(replay.sent['sec-fetch-site']).toBe('same-origin');
        expect(replay.sent.cookie ?? '').not.toContain(real.csrf);
        expect(replay.text).toContain('this sign-in was started in another browser');
      }
      expect(received).toHaveLength(before);
      // Control: the victim's browser, holding those cookies, decides.
      const answer = await decide(victim.page, ALLOW);
      expect((await exchange(victim, answer.searchParams.get('code') ?? '')).status).toBe(200);
    });
  });
});
