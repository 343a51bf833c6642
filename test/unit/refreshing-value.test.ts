import { describe, expect, it } from 'vitest';
import { RefreshingValue } from '../../src/cache/refreshing-value.js';

const MAX_AGE_MS = 60_000;
const RETRY_MS = 5_000;

/**
 * A source whose loads the test settles by hand, on a clock that only moves when the test
 * moves it: every load it was asked for is in `calls`, with what it was given as the previous value.
 */
function source() {
  const clock = { now: 1_000_000 };
  const calls: { previous: string | undefined; resolve(value: string): void; reject(error: Error): void }[] = [];
  const failures: [string, number][] = [];
  const value = new RefreshingValue<string>({
    load: (previous) => new Promise((resolve, reject) => void calls.push({ previous, resolve, reject })),
    maxAgeMs: MAX_AGE_MS,
    retryMs: RETRY_MS,
    now: () => clock.now,
    onFailure: (error, failuresInARow) => void failures.push([(error as Error).message, failuresInARow]),
  });
  const last = () => calls[calls.length - 1]!;
  return { clock, calls, failures, value, last };
}

/** Lets the promise callbacks run after a load is settled. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('RefreshingValue', () => {
  it('waits for the first load, and shares it among every caller meanwhile', async () => {
    const { calls, value, last } = source();
    expect(value.loaded).toBe(false);
    const first = value.get();
    const second = value.get();
    expect(calls).toHaveLength(1);
    expect(last().previous).toBeUndefined();
    last().resolve('v1');
    expect(await Promise.all([first, second])).toEqual(['v1', 'v1']);
    expect(value.loaded).toBe(true);
    expect(value.value).toBe('v1');
  });

  it('serves a fresh value without loading, and a stale one at once while it refreshes behind', async () => {
    const { clock, calls, value, last } = source();
    const first = value.get();
    last().resolve('v1');
    await first;
    clock.now += MAX_AGE_MS - 1;
    expect(await value.get()).toBe('v1');
    expect(calls).toHaveLength(1);
    clock.now += 1;
    expect(await value.get()).toBe('v1'); // stale, answered without waiting
    expect(await value.get()).toBe('v1'); // joins the refresh in flight
    expect(calls).toHaveLength(2);
    expect(last().previous).toBe('v1');
    last().resolve('v2');
    await flush();
    expect(await value.get()).toBe('v2');
    expect(calls).toHaveLength(2); // fresh again: its age counts from the refresh
  });

  it('keeps the last good value when a refresh fails, reports each failure in a row, and counts again after a success', async () => {
    const { clock, calls, failures, value, last } = source();
    const first = value.get();
    last().resolve('v1');
    await first;
    clock.now += MAX_AGE_MS;
    await value.get();
    last().reject(new Error('down'));
    await flush();
    expect(value.value).toBe('v1');
    expect(value.failuresInARow).toBe(1);
    clock.now += RETRY_MS - 1;
    expect(await value.get()).toBe('v1');
    expect(calls).toHaveLength(2); // no attempt before the retry delay
    clock.now += 1;
    await value.get();
    last().reject(new Error('still down'));
    await flush();
    clock.now += RETRY_MS;
    await value.get();
    last().resolve('v2');
    await flush();
    expect(value.value).toBe('v2');
    expect(value.failuresInARow).toBe(0);
    expect(failures).toEqual([
      ['down', 1],
      ['still down', 2],
    ]);
  });

  it('with nothing loaded yet, answers undefined at once until the retry delay has passed, then waits for the next load', async () => {
    const { clock, calls, value, last } = source();
    const first = value.get();
    last().reject(new Error('down'));
    expect(await first).toBeUndefined();
    expect(value.lastAttemptAt).toBe(clock.now);
    clock.now += RETRY_MS - 1;
    expect(await value.get()).toBeUndefined();
    expect(calls).toHaveLength(1);
    clock.now += 1;
    const second = value.get();
    expect(calls).toHaveLength(2);
    last().resolve('v1');
    expect(await second).toBe('v1');
  });

  it('refreshes on demand at most once per gap of the caller, and due() is true while a load can be joined', async () => {
    const { clock, calls, value, last } = source();
    const first = value.get();
    expect(value.due(30_000)).toBe(true); // in flight
    last().resolve('v1');
    await first;
    expect(value.due(30_000)).toBe(false);
    clock.now += 29_999;
    await value.refreshIfDue(30_000);
    expect(calls).toHaveLength(1);
    clock.now += 1;
    const refreshing = value.refreshIfDue(30_000);
    const joined = value.refreshIfDue(30_000);
    expect(calls).toHaveLength(2);
    last().resolve('v2');
    await Promise.all([refreshing, joined]);
    expect(value.value).toBe('v2');
  });

  it('never rejects, even when load throws before returning a promise', async () => {
    const failures: number[] = [];
    const value = new RefreshingValue<string>({
      load: () => {
        throw new Error('synchronous');
      },
      maxAgeMs: MAX_AGE_MS,
      retryMs: RETRY_MS,
      now: () => 0,
      onFailure: (_, failuresInARow) => void failures.push(failuresInARow),
    });
    await expect(value.refresh()).resolves.toBeUndefined();
    await expect(value.get()).resolves.toBeUndefined();
    expect(failures).toEqual([1]);
    expect(value.loaded).toBe(false);
  });
});
