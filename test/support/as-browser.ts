import { CookieJar } from '../../dev/idp.js';

/** Where an authorization ended: at the client's redirect URI (code or error), or on a gateway page. */
export type AuthorizationOutcome =
  | { readonly kind: 'stopped'; readonly url: URL }
  | { readonly kind: 'redirect'; readonly url: URL; readonly code?: string; readonly error?: string; readonly errorDescription?: string; readonly state?: string; readonly iss?: string }
  | { readonly kind: 'page'; readonly status: number; readonly url: URL; readonly html: string; readonly headers: Headers };

/** The consent page as a test reads it: its form fields and the page itself. */
export interface ConsentForm {
  readonly url: URL;
  readonly action: URL;
  readonly request: string;
  readonly csrf: string;
  readonly html: string;
  readonly headers: Headers;
}

export interface BrowserOptions {
  /** Who logs in at the dev IdP (its login_hint); default: the IdP's default subject. */
  readonly subject?: string;
  /** Where a URL is really sent: a load balancer in front of replicas that share one public origin. */
  readonly route?: (url: URL) => URL;
  /** The browser stops before requesting a URL this accepts (the test then takes over). */
  readonly stopAt?: (url: URL) => boolean;
}

const MAX_HOPS = 20;

/**
 * A browser without a screen for the authorization server's flows: follows redirects by hand,
 * keeps cookies, logs in at the dev IdP (login_hint), and stops at the consent page, at the
 * client's redirect URI, or at any other page. Requests carry the headers a browser would send
 * for a top-level navigation (Sec-Fetch-Site) and a same-origin form post (Origin).
 */
export class TestBrowser {
  readonly jar = new CookieJar();

  constructor(private readonly options: BrowserOptions = {}) {}

  /** Follows `start` until the client's redirect URI, a consent page, or another page. */
  async navigate(start: URL | string, redirectUri: string): Promise<AuthorizationOutcome | { kind: 'consent'; form: ConsentForm }> {
    return this.follow(new URL(start), redirectUri, { method: 'GET' });
  }

  /** Submits the consent form as a browser would (Origin of the page, its cookies), with a decision. */
  async decide(form: ConsentForm, decision: 'approve' | 'deny', redirectUri: string, tamper: { csrf?: string; origin?: string; request?: string } = {}): Promise<AuthorizationOutcome | { kind: 'consent'; form: ConsentForm }> {
    const body = new URLSearchParams({ request: tamper.request ?? form.request, csrf: tamper.csrf ?? form.csrf, decision });
    return this.follow(form.action, redirectUri, {
      method: 'POST',
      body: body.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: tamper.origin ?? postOrigin(form), 'sec-fetch-site': tamper.origin ? 'cross-site' : 'same-origin' },
    });
  }

  /** The whole flow with an answer to the consent page if one is shown; returns where it ended and whether consent was asked. */
  async authorize(start: URL | string, redirectUri: string, decision: 'approve' | 'deny' = 'approve'): Promise<{ outcome: AuthorizationOutcome; consentShown: boolean }> {
    const first = await this.navigate(start, redirectUri);
    if (first.kind !== 'consent') return { outcome: first, consentShown: false };
    const second = await this.decide(first.form, decision, redirectUri);
    if (second.kind === 'consent') throw new Error('the consent page came back after a decision');
    return { outcome: second, consentShown: true };
  }

  private async follow(start: URL, redirectUri: string, init: { method: string; body?: string; headers?: Record<string, string> }): Promise<AuthorizationOutcome | { kind: 'consent'; form: ConsentForm }> {
    let url = start;
    let request = init;
    const target = new URL(redirectUri);
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      if (url.origin === target.origin && url.pathname === target.pathname) return redirectOutcome(url);
      if (this.options.stopAt?.(url)) return { kind: 'stopped', url };
      if (this.options.subject !== undefined && url.pathname === '/auth' && url.searchParams.has('client_id')) url.searchParams.set('login_hint', this.options.subject);
      const real = this.options.route ? this.options.route(url) : url;
      const cookie = this.jar.header(url);
      const response = await fetch(real, {
        method: request.method,
        redirect: 'manual',
        headers: { 'sec-fetch-site': 'cross-site', ...request.headers, ...(cookie ? { cookie } : {}) },
        ...(request.body !== undefined ? { body: request.body } : {}),
      });
      this.jar.store(response, url);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        url = new URL(location, url);
        request = { method: 'GET' };
        continue;
      }
      const html = await response.text();
      const form = consentForm(url, html, response.headers);
      if (form && response.status === 200) return { kind: 'consent', form };
      return { kind: 'page', status: response.status, url, html, headers: response.headers };
    }
    throw new Error(`no end after ${MAX_HOPS} redirects`);
  }
}

/**
 * The Origin a browser sends with a page's own form POST: `null` under referrer policy
 * no-referrer (the Fetch standard's "serializing a request origin"), as Chromium does.
 */
function postOrigin(form: ConsentForm): string {
  return form.headers.get('referrer-policy') === 'no-referrer' ? 'null' : form.url.origin;
}

function redirectOutcome(url: URL): AuthorizationOutcome {
  const get = (key: string) => url.searchParams.get(key) ?? undefined;
  const fields = { code: get('code'), error: get('error'), errorDescription: get('error_description'), state: get('state'), iss: get('iss') };
  return { kind: 'redirect', url, ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) };
}

function consentForm(url: URL, html: string, headers: Headers): ConsentForm | undefined {
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  const request = /name="request" value="([^"]+)"/.exec(html)?.[1];
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!action || !request || !csrf) return undefined;
  return { url, action: new URL(action.replaceAll('&amp;', '&'), url), request, csrf, html, headers };
}
