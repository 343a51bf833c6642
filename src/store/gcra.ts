import type { RateLimitResult, RateLimitSpec } from './types.js';

/**
 * The generic cell rate algorithm: a rate limit as one number per key, the theoretical arrival
 * time (TAT) of the next request. A budget of `requests` per `periodMs` lets a full burst of
 * `requests` through, then one every `periodMs / requests`, with no window edges to game (a fixed
 * window lets twice the limit through around a boundary). The Redis store runs the same
 * arithmetic in Lua (redis.ts); keep the two in step.
 */
export interface GcraStep {
  readonly result: RateLimitResult;
  /** The TAT to store, and for how long it matters, when the request is allowed. */
  readonly next?: { readonly tat: number; readonly ttlMs: number };
}

export function gcraStep(storedTat: number | undefined, now: number, limit: RateLimitSpec, cost: number): GcraStep {
  const interval = limit.periodMs / limit.requests;
  const tat = Math.max(storedTat ?? now, now);
  const newTat = tat + interval * cost;
  const allowAt = newTat - limit.periodMs;
  if (allowAt > now) return { result: { allowed: false, retryAfterMs: Math.ceil(allowAt - now) } };
  return { result: { allowed: true }, next: { tat: newTat, ttlMs: Math.ceil(newTat - now) } };
}
