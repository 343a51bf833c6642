import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { staticCredentialValue } from '../config/upstream-auth-section.js';
import type { StaticUpstreamAuth } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import type { CredentialSource } from './modes.js';
import { credentialUnavailable, staticCredentialRejected } from './refusals.js';

/** How often the file's stat is compared, in case a watch missed a change (network file systems). */
const POLL_MS = 10_000;
/** Writers replace a file in several steps (Kubernetes swaps `..data`): one read after they settle. */
const SETTLE_MS = 20;

/**
 * A secret from a file (a mounted Kubernetes Secret), sent in a configured header. A request
 * only reads the value in memory: the file is read again when its directory reports a change
 * (watched where the path is and where it leads, so Kubernetes' atomic `..data` symlink swap is
 * seen), when a stat every POLL_MS differs, and when the upstream refused the value. A file that
 * became unreadable or invalid leaves the last good value in force (logged). The value itself
 * is never logged.
 */
export class StaticCredential implements CredentialSource {
  readonly mode = 'static' as const;
  readonly header: string;
  private value: string | undefined;
  private rereading: Promise<void> | undefined;
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly poll: NodeJS.Timeout;
  private settle: NodeJS.Timeout | undefined;
  private seen = '';
  private closed = false;
  private readonly logger: Logger;

  constructor(
    private readonly config: StaticUpstreamAuth,
    logger: Logger,
    routeName: string,
  ) {
    this.header = config.header;
    this.logger = logger.child({ route: routeName, upstreamAuth: 'static' });
    // Once, when the route is built (startup or reload), not per request: the loader just read it.
    try {
      this.accept(readFileSync(config.valueFile, 'utf8'));
    } catch (error) {
      this.logger.error({ file: config.valueFile, err: (error as Error).message }, 'upstream credential file cannot be read');
    }
    void this.watch();
    void this.fingerprint().then((seen) => (this.seen = seen));
    this.poll = setInterval(() => void this.checkStat(), POLL_MS).unref();
  }

  current(): string | Promise<string> {
    if (this.rereading) return this.rereading.then(() => this.valueOrRefusal());
    return this.valueOrRefusal();
  }

  forget(): Promise<void> {
    return this.rereadOnce('refused by the upstream');
  }

  refusedAgain() {
    return staticCredentialRejected();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.poll);
    clearTimeout(this.settle);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  private valueOrRefusal(): string {
    if (this.value === undefined) throw credentialUnavailable(5);
    return this.value;
  }

  private accept(text: string): boolean {
    const checked = staticCredentialValue(text, this.config.prefix);
    if ('problem' in checked) {
      this.logger.error({ file: this.config.valueFile, problem: checked.problem }, 'upstream credential file is not usable: the last good value stays in force');
      return false;
    }
    const changed = checked.value !== this.value;
    this.value = checked.value;
    return changed;
  }

  /** One read at a time; requests meanwhile wait for it rather than send the value being replaced. */
  private rereadOnce(reason: string): Promise<void> {
    return (this.rereading ??= this.reread(reason).finally(() => (this.rereading = undefined)));
  }

  private async reread(reason: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.config.valueFile, 'utf8');
    } catch (error) {
      this.logger.error({ file: this.config.valueFile, err: (error as Error).message }, 'upstream credential file cannot be read: the last good value stays in force');
      return;
    }
    if (this.accept(text)) this.logger.info({ event: 'upstream-credential', file: this.config.valueFile, reason }, 'upstream credential file re-read: the new value is in force');
    this.seen = await this.fingerprint();
    // The path may lead elsewhere now (a re-pointed `..data`): watch where it leads.
    await this.watch();
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.settle);
    this.settle = setTimeout(() => void this.rereadOnce('file changed'), SETTLE_MS).unref();
  }

  /** Watches the file's directory and its resolved target's: a rename over it, a swap, an edit in place. */
  private async watch(): Promise<void> {
    const file = this.config.valueFile;
    const dirs = new Set([dirname(file), dirname(await realpath(file).catch(() => file))]);
    if (this.closed) return;
    for (const [dir, watcher] of this.watchers) {
      if (!dirs.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        this.watchers.set(dir, watch(dir, { persistent: false }, () => this.schedule()).on('error', () => undefined));
      } catch {
        // Gone meanwhile: the stat poll notices what follows.
      }
    }
  }

  private async checkStat(): Promise<void> {
    if ((await this.fingerprint()) !== this.seen) this.schedule();
  }

  /** What identifies the file's contents without reading them: inode, size and modification time. */
  private fingerprint(): Promise<string> {
    return stat(this.config.valueFile).then(
      (s) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`,
      () => '',
    );
  }
}
