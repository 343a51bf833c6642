/**
 * A real headless browser for tests of HTML pages (the authorization-server facade's consent
 * page): Debian's `chromium` package driven by `playwright-core`. Nothing is downloaded at run
 * time (playwright-core has no browser of its own); `.ci/run` installs chromium when missing.
 *
 * Each `startBrowser()` is one Chromium process tree with a fresh profile in its own temporary
 * directory, so no cookie, cache or session leaks between harnesses; `close()` ends the tree and
 * removes the directory. Playwright also kills the browser if the test process exits first.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium launcher (it execs /usr/lib/chromium/chromium); CHROMIUM_PATH overrides it. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Headless, no sandbox (tests run as root in containers, where the setuid sandbox cannot work),
 * and nothing that talks to the network on its own (no QUIC, updates, sync, first-run pings):
 * the only requests the browser makes are the test's.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface BrowserHarnessOptions {
  /** Milliseconds for each navigation and action (default 10 s): a hung page fails the test. */
  readonly timeoutMs?: number;
}

export interface BrowserHarness {
  /** The browser's one context (a persistent context over the fresh profile). */
  readonly context: BrowserContext;
  /** The tab Chromium opened at start. */
  readonly page: Page;
  /** The fresh profile directory, removed by close(). */
  readonly userDataDir: string;
  /** Another tab in the same context (same cookies). */
  newPage(): Promise<Page>;
  /** Closes the browser (every process of it) and removes the profile. Safe to call twice. */
  close(): Promise<void>;
}

const open = new Set<string>();
let exitHookInstalled = false;

export async function startBrowser(options: BrowserHarnessOptions = {}): Promise<BrowserHarness> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'mcp-gw-chromium-'));
  registerForExit(userDataDir);
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS],
      timeout: 30_000,
    });
  } catch (err) {
    await removeProfile(userDataDir);
    throw new Error(
      `could not start ${CHROMIUM_PATH} (on Debian: apt-get install chromium; .ci/run installs it): ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const timeout = options.timeoutMs ?? 10_000;
  context.setDefaultTimeout(timeout);
  context.setDefaultNavigationTimeout(timeout);
  const page = context.pages()[0] ?? (await context.newPage());
  let closed: Promise<void> | undefined;
  return {
    context,
    page,
    userDataDir,
    newPage: () => context.newPage(),
    close() {
      closed ??= (async () => {
        try {
          await context.close();
        } finally {
          await removeProfile(userDataDir);
        }
      })();
      return closed;
    },
  };
}

async function removeProfile(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  open.delete(dir);
}

/** A profile left by a test that never closed its browser goes with the process. */
function registerForExit(dir: string): void {
  open.add(dir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const leftover of open) rmSync(leftover, { recursive: true, force: true });
  });
}
