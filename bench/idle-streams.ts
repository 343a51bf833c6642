import { fileURLToPath } from 'node:url';
import { spawnNode, type Child } from './children.js';
import { processMemory, type ProcessMemory } from './memory.js';

/** Resident memory of one proxying process before, with and after N idle SSE streams through it. */
export interface IdleStreamsResult {
  readonly target: string;
  /** Streams asked for, and streams actually opened. */
  readonly requested: number;
  readonly opened: number;
  readonly failed: number;
  readonly firstError?: string;
  /** Seconds to open them all (initialize + GET each). */
  readonly openSeconds: number;
  readonly before: ProcessMemory;
  /** 3 s after the last stream opened. */
  readonly justOpened: ProcessMemory;
  /**
   * After `settleSeconds` more of idleness: V8's memory reducer collects the garbage left by
   * opening the streams only once allocation has stayed low for a while (some 20 s).
   */
  readonly withStreams: ProcessMemory;
  readonly settleSeconds: number;
  /** After the client closed every stream and a few seconds passed. */
  readonly afterClose: ProcessMemory;
  /** (withStreams.rss − before.rss) ÷ opened. */
  readonly bytesPerStream: number;
  /** before.rss + bytesPerStream × requested: where `opened` fell short of `requested` (the file limit). */
  readonly projectedRss: number;
}

const CLIENTS = fileURLToPath(new URL('./stream-clients-process.js', import.meta.url));
const SETTLE_MS = 3_000;
/** Idle time after opening, long enough for V8's memory reducer (it waited ~18 s in trials). */
export const IDLE_SETTLE_SECONDS = 25;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Opens `count` idle streams through `url` from a separate client process, and reads the
 * target process's RSS (VmRSS) before, once all are open and settled, and after they are closed.
 */
export async function measureIdleStreams(target: string, pid: number, url: string, token: string | undefined, count: number, requested: number): Promise<IdleStreamsResult> {
  await sleep(SETTLE_MS);
  const before = await processMemory(pid);
  const started = performance.now();
  const clients: Child = spawnNode(`stream clients (${target})`, CLIENTS, [JSON.stringify({ url, token, count })]);
  try {
    const done = await waitForDone(clients, 60_000 + count * 20);
    const openSeconds = (performance.now() - started) / 1000;
    await sleep(SETTLE_MS);
    const justOpened = await processMemory(pid);
    await sleep(IDLE_SETTLE_SECONDS * 1000 - SETTLE_MS);
    const withStreams = await processMemory(pid);
    await clients.stop();
    await sleep(SETTLE_MS);
    const afterClose = await processMemory(pid);
    const opened = Number(done.opened);
    const bytesPerStream = opened > 0 ? (withStreams.rss - before.rss) / opened : Number.NaN;
    return {
      target,
      requested,
      opened,
      failed: Number(done.failed),
      ...(typeof done.firstError === 'string' ? { firstError: done.firstError } : {}),
      openSeconds,
      before,
      justOpened,
      withStreams,
      settleSeconds: IDLE_SETTLE_SECONDS,
      afterClose,
      bytesPerStream,
      projectedRss: before.rss + bytesPerStream * requested,
    };
  } finally {
    await clients.stop();
  }
}

/** The clients' final {"done": true, …} line (progress lines come before it). */
function waitForDone(clients: Child, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const settle = (outcome: () => void) => {
      clearTimeout(timer);
      stopListening();
      clients.process.off('exit', onExit);
      outcome();
    };
    const onExit = (code: number | null) => settle(() => reject(new Error(`${clients.name} exited early with ${code}:\n${clients.output.join('\n')}`)));
    const timer = setTimeout(() => settle(() => reject(new Error(`${clients.name} did not finish within ${timeoutMs} ms`))), timeoutMs);
    clients.process.once('exit', onExit);
    const stopListening = clients.onLine((line, stream) => {
      if (stream !== 'stdout' || !line.includes('"done"')) return;
      try {
        const value = JSON.parse(line) as Record<string, unknown>;
        if (value.done === true) settle(() => resolve(value));
      } catch {
        // not ours
      }
    });
  });
}
