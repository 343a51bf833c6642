import type { RateLimitResult, RateLimitSpec } from './types.js';

/**
 * The generic cell rate algorithm: a rate limit as one number per key, the theoretical arrival
 * time (TAT) of the next request. A budget of `requests` per `periodMs` lets a full burst of
 * `requests` through, then one every `periodMs / requests`, with no window edges to game (a fixed
 * window lets twice the limit through around a boundary). The Redis store runs the same
 * arithmetic in Lua (redis.ts); keep the two in step.
 *
 * Times are whole microseconds and the interval is rounded down to one, so sums are exact: with
 * fractional milliseconds, float drift refused the last request of a full burst (7 per second
 * at a real timestamp let only 6 through). Rounding down errs by under a microsecond per request.
 */
export interface GcraStep {
  readonly result: RateLimitResult;
  /** The TAT (µs) to store, and for how long it matters, when the request is allowed. */
  readonly next?: { readonly tatMicros: number; readonly ttlMs: number };
}

export function gcraStep(storedTatMicros: number | undefined, nowMicros: number, limit: RateLimitSpec, cost: number): GcraStep {
  const periodMicros = limit.periodMs * 1000;
  const intervalMicros = Math.floor(periodMicros / limit.requests);
  const tat = Math.max(storedTatMicros ?? nowMicros, nowMicros);
  const newTat = tat + intervalMicros * cost;
  const allowAt = newTat - periodMicros;
  if (allowAt > nowMicros) return { result: { allowed: false, retryAfterMs: Math.ceil((allowAt - nowMicros) / 1000) } };
  return { result: { allowed: true }, next: { tatMicros: newTat, ttlMs: Math.max(1, Math.ceil((newTat - nowMicros) / 1000)) } };
}
