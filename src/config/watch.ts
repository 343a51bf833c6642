import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { lstat, readFile, readlink, realpath, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { loadConfig } from './load.js';
import { ConfigError, formatProblem } from './problems.js';
import type { GatewayConfig } from './types.js';

/** Shared with readiness: the last reload that was refused, if the newest files are not in force. */
export interface ConfigHealth {
  refused?: { readonly at: string; readonly problems: readonly string[] };
  /** Reloads applied and refused since startup (metrics read them). */
  reloadsApplied?: number;
  reloadsRefused?: number;
}

export interface ConfigWatcher {
  /** Loads the files now (SIGHUP); resolves when the attempt is done. */
  reload(reason: string): Promise<void>;
  close(): void;
}

/** Editors and Kubernetes write in several steps; one reload after they settle. */
const SETTLE_MS = 150;

/**
 * Reloads the config and its policies when their files change (their directories are watched,
 * so Kubernetes' atomic `..data` symlink swap of a mounted ConfigMap is seen) or on request.
 * A file that is a symlink (a policy in a git checkout elsewhere) is also watched where it
 * leads: the directory of every link on the way and of its resolved target, found again after
 * each attempt, since the link may be re-pointed.
 * A new config is applied only once it loads without a single problem; otherwise the last good
 * one stays in force and the problems are logged (file:line:col) and kept for readiness.
 */
export async function watchConfig(file: string, initial: GatewayConfig, apply: (config: GatewayConfig) => void, logger: Logger, health: ConfigHealth): Promise<ConfigWatcher> {
  const configPath = resolve(file);
  const watchers = new Map<string, FSWatcher>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let closed = false;
  let applied: string | undefined;
  let inForce = initial;

  /**
   * Watches exactly the directories the files now lead to; true if one was not watched before.
   * A watch follows the directory (inode) its path named when it began, so watches are keyed by
   * it: after Kubernetes swaps `..data`, or a checkout replaces a directory, the same path is a
   * new directory and gets a new watch; two paths to one directory share one.
   */
  const watchFilesOf = async (config: GatewayConfig): Promise<boolean> => {
    const dirs = new Map<string, string>();
    for (const file of filesOf(configPath, config)) {
      for (const dir of await directoriesOf(file)) {
        const id = await stat(dir).then((stats) => `${stats.dev}:${stats.ino}`, () => undefined);
        if (id !== undefined && !dirs.has(id)) dirs.set(id, dir);
      }
    }
    if (closed) return false;
    for (const [id, watcher] of watchers) {
      if (dirs.has(id)) continue;
      watcher.close();
      watchers.delete(id);
    }
    let added = false;
    for (const [id, dir] of dirs) {
      if (watchers.has(id)) continue;
      try {
        watchers.set(id, watch(dir, { persistent: false }, () => schedule()).on('error', () => undefined));
        added = true;
      } catch {
        // Gone between resolving and watching: the change that removed it was seen or will be.
      }
    }
    return added;
  };

  const attempt = async (reason: string): Promise<void> => {
    let config: GatewayConfig;
    try {
      config = await loadConfig(configPath);
    } catch (error) {
      const problems = error instanceof ConfigError ? error.problems.map(formatProblem) : [(error as Error).message];
      health.refused = { at: new Date().toISOString(), problems };
      health.reloadsRefused = (health.reloadsRefused ?? 0) + 1;
      logger.error({ event: 'reload', reason, problems }, 'config reload refused: the last good configuration stays in force');
      // A link re-pointed at a broken file: its fix, written in place, must be seen too.
      await watchFilesOf(inForce);
      return;
    }
    const fingerprint = await fingerprintOf(configPath, config);
    delete health.refused;
    if (fingerprint !== applied) {
      applied = fingerprint;
      inForce = config;
      apply(config);
      health.reloadsApplied = (health.reloadsApplied ?? 0) + 1;
      logger.info({ event: 'reload', reason, routes: config.routes.map((r) => r.name) }, 'config reloaded');
    }
    // Even when nothing new is in force (a touch, an editor's intermediate write, a link
    // re-pointed at an identical file), the links may lead elsewhere now. A change written to a
    // newly watched directory before its watch began is caught by one more look.
    if ((await watchFilesOf(config)) && (await fingerprintOf(configPath, config)) !== applied) schedule();
  };

  const schedule = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void reload('files changed'), SETTLE_MS);
    timer.unref();
  };

  // One attempt at a time, in order: a reload never races another.
  const reload = (reason: string): Promise<void> => {
    running = running.then(() => (closed ? undefined : attempt(reason)));
    return running;
  };

  // Watching starts before the gateway serves, so no change after startup can go unseen.
  await watchFilesOf(initial);
  applied = await fingerprintOf(configPath, initial);
  return {
    reload,
    close() {
      closed = true;
      clearTimeout(timer);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}

/** The config, its policies, and the secret files a token exchange or a connected account reads at load (so a rotated secret is taken up). */
function filesOf(configPath: string, config: GatewayConfig): string[] {
  const secrets = config.routes.flatMap((route) => (route.upstreamAuth?.mode === 'tokenExchange' || route.upstreamAuth?.mode === 'connectedAccount' ? route.upstreamAuth.files : []));
  return [configPath, ...new Set([...config.routes.map((route) => route.policy.file), ...secrets])];
}

/** Symlinks followed by the kernel at most this deep (Linux's MAXSYMLINKS); a deeper chain fails to load anyway. */
const MAX_LINKS = 40;

/**
 * Where a change to `file` can happen: its own directory (a rename over it, Kubernetes' `..data`
 * swap), the directory of each symlink it leads through (one re-pointed), and that of its
 * resolved target (an edit in place). A dangling link yields what could be resolved.
 */
async function directoriesOf(file: string): Promise<string[]> {
  const dirs = [dirname(file)];
  let path = file;
  for (let hop = 0; hop < MAX_LINKS; hop++) {
    const link = await lstat(path).then((stats) => stats.isSymbolicLink(), () => false);
    const target = link ? await readlink(path).catch(() => undefined) : undefined;
    if (target === undefined) break;
    path = resolve(dirname(path), target);
    dirs.push(dirname(path));
  }
  const real = await realpath(file).catch(() => undefined);
  if (real !== undefined) dirs.push(dirname(real));
  return dirs;
}

/** What the files say now: a reload that changes nothing is not applied again. */
async function fingerprintOf(configPath: string, config: GatewayConfig): Promise<string> {
  const hash = createHash('sha256');
  for (const path of filesOf(configPath, config)) {
    hash.update(path).update('\u0000').update(await readFile(path).catch(() => Buffer.alloc(0))).update('\u0000');
  }
  return hash.digest('base64url');
}
