/** Small helpers for tests that watch how long the gateway takes to answer while things break. */

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface TimedResponse {
  readonly status: number;
  readonly retryAfter: string | null;
  readonly body: string;
  readonly ms: number;
}

/** Awaits the response and its whole body, and how long both took. */
export async function timed(request: Promise<Response>): Promise<TimedResponse> {
  const started = performance.now();
  const response = await request;
  const body = await response.text();
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body, ms: performance.now() - started };
}

/** Polls `check` every 100 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** The store's outage and recovery lines (`event: store`) among a gateway's logs. */
export function storeEvents(logs: readonly Record<string, unknown>[], state?: 'up' | 'down'): Record<string, unknown>[] {
  return logs.filter((entry) => entry.event === 'store' && (state === undefined || entry.state === state));
}
