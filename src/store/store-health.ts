import type { Logger } from '../observability/logger.js';

/** How often a store that stopped answering is probed until it answers again. */
const PROBE_INTERVAL_MS = 250;

/**
 * A circuit breaker around the store. The first failed command opens it: from then on store
 * calls fail at once instead of each waiting out the command timeout (a request's later store
 * steps do not add up), while a probe runs every PROBE_INTERVAL_MS; the first probe that passes
 * closes it. The outage and the recovery are each logged once, so a flapping command does not
 * flood the log with up/down lines.
 */
export class StoreHealth {
  /** 'starting' until the first answer or failure, so the very first failure is logged too. */
  private state: 'starting' | 'up' | 'down' = 'starting';
  private probing = false;
  private stopped = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly name: string,
    private readonly probe: () => Promise<void>,
    private readonly logger: Logger,
  ) {}

  get isDown(): boolean {
    return this.state === 'down';
  }

  /** Resolves true once the store answered, or false after `timeoutMs`. */
  whenUp(timeoutMs: number): Promise<boolean> {
    if (this.state === 'up') return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  up(): void {
    if (this.state === 'up' || this.stopped) return;
    this.state = 'up';
    this.logger.info({ event: 'store', store: this.name, state: 'up' }, `store reachable: ${this.name} answers`);
    for (const wake of this.waiters.splice(0)) wake();
  }

  down(error: Error): void {
    if (this.state === 'down' || this.stopped) return;
    this.state = 'down';
    this.logger.error(
      { event: 'store', store: this.name, state: 'down', err: error.message },
      `store unreachable: ${this.name} did not answer (${error.message}); session-bound requests get 503 and rate limits follow onStoreError until it answers again`,
    );
    this.scheduleProbe(PROBE_INTERVAL_MS);
  }

  /** Probe now (e.g. the client reconnected) rather than at the next interval. */
  probeSoon(): void {
    if (this.state !== 'up') this.scheduleProbe(0);
  }

  stop(): void {
    this.stopped = true;
  }

  private scheduleProbe(delayMs: number): void {
    if (this.probing || this.stopped) return;
    this.probing = true;
    setTimeout(() => {
      this.probe().then(
        () => {
          this.probing = false;
          this.up();
        },
        () => {
          this.probing = false;
          if (this.state === 'down') this.scheduleProbe(PROBE_INTERVAL_MS);
        },
      );
    }, delayMs).unref();
  }
}
