import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
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
 * A new config is applied only once it loads without a single problem; otherwise the last good
 * one stays in force and the problems are logged (file:line:col) and kept for readiness.
 */
export async function watchConfig(file: string, initial: GatewayConfig, apply: (config: GatewayConfig) => void, logger: Logger, health: ConfigHealth): Promise<ConfigWatcher> {
  const configPath = resolve(file);
  let watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let closed = false;
  let applied: string | undefined;

  const watchFilesOf = (config: GatewayConfig) => {
    for (const watcher of watchers) watcher.close();
    const dirs = new Set([dirname(configPath), ...config.routes.map((route) => dirname(route.policy.file))]);
    watchers = [...dirs].map((dir) => watch(dir, { persistent: false }, () => schedule()).on('error', () => undefined));
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
      return;
    }
    const fingerprint = await fingerprintOf(configPath, config);
    delete health.refused;
    if (fingerprint === applied) return; // a touch, or an editor's intermediate write: nothing new
    applied = fingerprint;
    apply(config);
    health.reloadsApplied = (health.reloadsApplied ?? 0) + 1;
    watchFilesOf(config);
    logger.info({ event: 'reload', reason, routes: config.routes.map((r) => r.name) }, 'config reloaded');
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
  watchFilesOf(initial);
  applied = await fingerprintOf(configPath, initial);
  return {
    reload,
    close() {
      closed = true;
      clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}

/** What the files say now: a reload that changes nothing is not applied again. */
async function fingerprintOf(configPath: string, config: GatewayConfig): Promise<string> {
  const hash = createHash('sha256');
  for (const path of [configPath, ...new Set(config.routes.map((route) => route.policy.file))]) {
    hash.update(path).update('\u0000').update(await readFile(path).catch(() => Buffer.alloc(0))).update('\u0000');
  }
  return hash.digest('base64url');
}
