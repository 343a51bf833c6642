/**
 * A value fetched from elsewhere (an issuer's keys, its metadata) and kept: the last good copy
 * stays until a fetch brings a better one, so an outage of its source turns into stale data,
 * never into no data. Depends on nothing else in the gateway, so any layer may use it.
 *
 * - Once older than maxAgeMs it is refreshed in the background; callers keep the copy they have.
 * - Only a caller with nothing in hand waits for a load.
 * - One load at a time: every caller meanwhile shares it.
 * - While loads fail (or before the first succeeds), one is attempted at most every retryMs;
 *   a caller may ask for one sooner (refreshIfDue) with a gap of its own.
 * - A failed load is reported (onFailure) and never rejects a caller.
 */
export interface RefreshingValueOptions<T> {
  /** Fetches a fresh value; `previous` is the last good one (to keep as is when nothing changed). */
  readonly load: (previous: T | undefined) => Promise<T>;
  /** Age after which the value is refreshed in the background. */
  readonly maxAgeMs: number;
  /** Least time between attempts while there is no value, or it is stale, and loads fail. */
  readonly retryMs: number;
  readonly now?: () => number;
  /** Told of each failed load; `failuresInARow` is 1 for the first since a success (log it once, not per request). */
  readonly onFailure?: (error: unknown, failuresInARow: number) => void;
}

export class RefreshingValue<T> {
  private current: T | undefined;
  private loadedAt = Number.NEGATIVE_INFINITY;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;
  private failures = 0;
  private readonly now: () => number;

  constructor(private readonly options: RefreshingValueOptions<T>) {
    // Read at each call, not captured: a test's fake Date.now applies.
    this.now = options.now ?? (() => Date.now());
  }

  /** The last good value, as it is: no load started, nothing awaited. */
  get value(): T | undefined {
    return this.current;
  }

  /** Whether a load ever succeeded. */
  get loaded(): boolean {
    return this.loadedAt !== Number.NEGATIVE_INFINITY;
  }

  /** Loads that failed since the last success (0: the last attempt succeeded, or none was made). */
  get failuresInARow(): number {
    return this.failures;
  }

  /** When the last load was started (-Infinity: never), e.g. to tell a client when to retry. */
  get lastAttemptAt(): number {
    return this.attemptedAt;
  }

  /**
   * The value. Without one, waits for a load if an attempt is due (else answers undefined at
   * once); with a stale one, starts a refresh in the background and answers the stale copy.
   */
  async get(): Promise<T | undefined> {
    if (!this.loaded) await this.refreshIfDue(this.options.retryMs);
    else if (this.now() - this.loadedAt >= this.options.maxAgeMs) void this.refreshIfDue(this.options.retryMs);
    return this.current;
  }

  /** Whether a refresh would run now: one is in flight (and can be joined), or none began within gapMs. */
  due(gapMs: number): boolean {
    return this.inflight !== undefined || this.now() - this.attemptedAt >= gapMs;
  }

  async refreshIfDue(gapMs: number): Promise<void> {
    if (this.due(gapMs)) await this.refresh();
  }

  /** Loads now, or joins the load in flight. Never rejects. */
  refresh(): Promise<void> {
    this.inflight ??= this.attempt().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async attempt(): Promise<void> {
    this.attemptedAt = this.now();
    try {
      this.current = await this.options.load(this.current);
      this.loadedAt = this.now();
      this.failures = 0;
    } catch (error) {
      // The last good value stays: its source failing must not take it away.
      this.failures++;
      this.options.onFailure?.(error, this.failures);
    }
  }
}
