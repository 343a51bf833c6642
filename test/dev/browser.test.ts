/**
 * The headless-browser harness (test/support/browser.ts) is what the consent-page tests stand
 * on: these prove it drives a real Chromium (reads a page, fills and submits a form that really
 * reaches the server), that the browser enforces framing protection like any user's browser
 * (X-Frame-Options DENY and CSP frame-ancestors 'none' pages stay empty when framed from another
 * origin, while an unprotected page does not), and that it leaves no process or profile behind.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { CHROMIUM_ARGS, startBrowser, type BrowserHarness } from '../support/browser.js';
import { closeLocalServers, listenLocal } from '../support/local-servers.js';

const SECRET = 'framed page content';

const FORM_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Approve access</title></head>
<body>
  <h1>Approve access for Test Client</h1>
  <form method="post" action="/submit">
    <label for="note">Note</label> <input id="note" name="note">
    <input type="hidden" name="csrf" value="token-123">
    <button type="submit" name="decision" value="approve">Approve</button>
  </form>
</body></html>`;

/** Command lines of running processes that mention `needle` (zombies have none: they hold nothing). */
function processesMentioning(needle: string): string[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        return cmdline.includes(needle) ? [`${pid}: ${cmdline}`] : [];
      } catch {
        return []; // gone meanwhile
      }
    });
}

describe('headless browser harness (Chromium via playwright-core)', () => {
  let browser: BrowserHarness;
  let site: string;
  let other: string;
  const posts: { body: string; contentType: string | undefined; origin: string | undefined }[] = [];
  const hits: string[] = [];

  beforeAll(async () => {
    const pages = (req: IncomingMessage, res: ServerResponse): void => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      hits.push(path);
      const html = (body: string, headers: Record<string, string> = {}): void => {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...headers }).end(body);
      };
      if (req.method === 'POST' && path === '/submit') {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (chunk: string) => (body += chunk));
        req.on('end', () => {
          posts.push({ body, contentType: req.headers['content-type'], origin: req.headers.origin });
          html('<!doctype html><title>Done</title><p id="result">Your answer was received.</p>');
        });
        return;
      }
      if (path === '/form') return html(FORM_PAGE);
      if (path === '/deny') return html(`<!doctype html><p>${SECRET}</p>`, { 'x-frame-options': 'DENY' });
      if (path === '/csp') return html(`<!doctype html><p>${SECRET}</p>`, { 'content-security-policy': "frame-ancestors 'none'" });
      if (path === '/open') return html(`<!doctype html><p>${SECRET}</p>`);
      res.writeHead(404).end();
    };
    site = await listenLocal(createServer(pages));
    // A second origin frames the first, as a clickjacking page would.
    other = await listenLocal(
      createServer((req, res) => {
        const target = new URL(req.url ?? '/', 'http://x').searchParams.get('src') ?? '';
        res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>framing</title><iframe id="victim" src="${site}${target}"></iframe>`);
      }),
    );
    browser = await startBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await closeLocalServers();
  });

  it('launches Chromium with the harness arguments and a fresh profile', async () => {
    expect(browser.context.browser()?.version()).toMatch(/^\d+\./);
    const running = processesMentioning(browser.userDataDir);
    expect(running.length).toBeGreaterThan(0);
    // The browser process: its renderers carry --remote-debugging-pipe too, but also a --type=,
    // and /proc lists pids in no order that puts the browser first once pids have wrapped.
    const main = running.find((line) => line.includes('--remote-debugging-pipe') && !line.includes(' --type=')) ?? '';
    for (const arg of CHROMIUM_ARGS) expect(main).toContain(arg);
    await browser.context.addCookies([{ name: 'seen', value: '1', url: site }]);
    expect(await browser.context.cookies(site)).toHaveLength(1);
  });

  it('reads a page, fills and submits its form; the POST reaches the server', async () => {
    const { page } = browser;
    await page.goto(`${site}/form`);
    await expect(page.title()).resolves.toBe('Approve access');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Approve access for Test Client');
    await page.getByLabel('Note').fill('hello & goodbye');
    await Promise.all([page.waitForURL(`${site}/submit`), page.getByRole('button', { name: 'Approve' }).click()]);
    expect(await page.locator('#result').textContent()).toBe('Your answer was received.');
    expect(posts).toHaveLength(1);
    expect(posts[0]?.contentType).toBe('application/x-www-form-urlencoded');
    expect(posts[0]?.origin).toBe(site);
    expect(Object.fromEntries(new URLSearchParams(posts[0]?.body))).toEqual({ note: 'hello & goodbye', csrf: 'token-123', decision: 'approve' });
  });

  /** What the framed document shows, once the framing page has loaded it (or its error page). */
  async function framedText(path: string): Promise<{ text: string; url: string }> {
    const page = await browser.newPage();
    try {
      await page.goto(`${other}/?src=${encodeURIComponent(path)}`, { waitUntil: 'load' });
      const frame = page.frames().find((f) => f !== page.mainFrame());
      if (!frame) throw new Error('no iframe');
      // A string, evaluated in the page: the test's own lib has no DOM types.
      const text = await frame.evaluate<string>('document.body ? document.body.innerText : ""').catch(() => '');
      return { text, url: frame.url() };
    } finally {
      await page.close();
    }
  }

  it.each(['/deny', '/csp'])('keeps a %s page empty when another origin frames it', async (path) => {
    const before = hits.filter((h) => h === path).length;
    const { text, url } = await framedText(path);
    // The browser did ask for the page: what kept it out is the header, not a missing request.
    expect(hits.filter((h) => h === path).length).toBe(before + 1);
    expect(text).not.toContain(SECRET);
    // Chromium swaps a refused frame for its error page.
    expect(url).toBe('chrome-error://chromewebdata/');
  });

  it('shows an unprotected page in the same frame (positive control)', async () => {
    const { text, url } = await framedText('/open');
    expect(text).toContain(SECRET);
    expect(url).toBe(`${site}/open`);
  });

  it('starts each harness with its own profile and closes without leaving a process or the profile behind', async () => {
    const second = await startBrowser();
    const dir = second.userDataDir;
    expect(dir).not.toBe(browser.userDataDir);
    await second.page.goto(`${site}/form`);
    // A fresh profile: the first browser's cookie is not here.
    expect(await second.context.cookies(site)).toEqual([]);
    expect(processesMentioning(dir).length).toBeGreaterThan(0);
    await second.close();
    await second.close(); // idempotent
    // Chromium's helper processes may exit a moment after the browser process has: all must go.
    await vi.waitFor(() => expect(processesMentioning(dir)).toEqual([]), { timeout: 5_000, interval: 50 });
    expect(existsSync(dir)).toBe(false);
  });
});
