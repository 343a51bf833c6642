import type { McpExchange } from './exchange.js';

/**
 * One step of the request path. It reads and fills in the exchange, and refuses by throwing a
 * Refusal. It returns a promise only when it has something to wait for (the IdP, the store, the
 * body, the upstream): the common case of a cached token, a memory store and a body that came
 * with its head stays synchronous inside the stage, and no interface pays for it.
 */
export type Stage = (exchange: McpExchange) => void | Promise<void>;

/**
 * Runs the stages in order until one answers the request itself or refuses, awaiting only what
 * a stage returns as a promise. Returns a promise only if some stage did.
 */
export function runStages(stages: readonly Stage[], exchange: McpExchange, from = 0): void | Promise<void> {
  for (let next = from; next < stages.length && !exchange.answered; next++) {
    const pending = stages[next]!(exchange);
    if (pending !== undefined) return pending.then(() => runStages(stages, exchange, next + 1));
  }
  return undefined;
}
