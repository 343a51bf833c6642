import { principalKey, type Principal } from '../auth/principal.js';
import { Refusal, type RequestId } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { RateLimitCharge } from '../policy/rate-limits.js';
import type { RateLimitRule } from '../policy/types.js';
import type { KeyValueStore, RateLimitResult } from '../store/types.js';

export type OnStoreError = 'deny' | 'allow';

export interface RateLimitRequest {
  readonly route: string;
  readonly charges: readonly RateLimitCharge[];
  readonly principal: Principal;
  /** JSON-RPC requests to answer with the error, when refused. */
  readonly rpcIds: readonly RequestId[];
  readonly onStoreError: OnStoreError;
}

/** While the store cannot answer, clients are asked to retry after this long. */
const STORE_RETRY_AFTER_SECONDS = 1;

/**
 * Spends a request's rate-limit budgets in the store (atomically there, so replicas share
 * them) and refuses the request when one is spent: 429 with Retry-After. When the store cannot
 * answer, the route's `onStoreError` decides: deny (503) or let the request through unlimited.
 */
export class RateLimiter {
  constructor(
    private readonly store: KeyValueStore,
    private readonly logger: Logger,
  ) {}

  /**
   * Refuses (rejects) when a budget is spent. The caller asks only when the request has charges.
   * Not `async`: an async function returning this chain would add two more turns of the
   * microtask queue to every request that has a budget.
   */
  enforce(request: RateLimitRequest): Promise<void> {
    const tooBig = request.charges.find(({ rule, cost }) => cost > rule.requests);
    if (tooBig) {
      // Waiting cannot help a batch larger than the whole budget, so no Retry-After suggests it.
      return Promise.reject(
        new Refusal('rate_limited', `Rate limit exceeded (${tooBig.rule.id}: ${tooBig.cost} calls in one request, the budget holds ${tooBig.rule.requests})`, {
          rpcIds: request.rpcIds,
        }),
      );
    }
    const storeFailed = (error: unknown) => this.storeFailed(request, error);
    // Most requests spend one budget: awaited alone, without Promise.all's extra promises.
    if (request.charges.length === 1) return this.consume(request, request.charges[0]!).then((result) => refuseIfSpent(request, [result]), storeFailed);
    return Promise.all(request.charges.map((charge) => this.consume(request, charge))).then((results) => refuseIfSpent(request, results), storeFailed);
  }

  /** The route's onStoreError decides: refuse with 503 (throws), or let the request through unlimited. */
  private storeFailed(request: RateLimitRequest, error: unknown): void {
    if (error instanceof Refusal) throw error;
    if (request.onStoreError === 'allow') {
      this.logger.debug({ event: 'rate-limit', route: request.route, err: (error as Error).message }, 'rate limit skipped: store unavailable (onStoreError: allow)');
      return;
    }
    throw new Refusal('store_unavailable', 'Rate limit store unavailable', { retryAfterSeconds: STORE_RETRY_AFTER_SECONDS, rpcIds: request.rpcIds });
  }

  private consume(request: RateLimitRequest, { rule, cost }: RateLimitCharge): Promise<RateLimitResult> {
    return this.store.consumeRate(budgetKey(request.route, rule, request.principal), rule, cost);
  }
}

/** 429 with Retry-After for the budget that frees up last, if any is spent. */
function refuseIfSpent(request: RateLimitRequest, results: readonly RateLimitResult[]): void {
  let waitMs = 0;
  let spent: RateLimitRule | undefined;
  results.forEach((result, index) => {
    if (!result.allowed && result.retryAfterMs >= waitMs) {
      waitMs = result.retryAfterMs;
      spent = request.charges[index]!.rule;
    }
  });
  if (spent) {
    throw new Refusal('rate_limited', `Rate limit exceeded (${spent.id}: ${spent.requests} per ${spent.periodMs / 1000}s)`, {
      retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
      rpcIds: request.rpcIds,
    });
  }
}

/** One budget per route, rule and subject (or client); the same subject at another issuer is someone else. */
function budgetKey(route: string, rule: RateLimitRule, principal: Principal): string {
  const who =
    rule.by === 'client' && principal.clientId !== undefined
      ? `client:${JSON.stringify([principal.issuer, principal.clientId])}`
      : `subject:${principalKey(principal)}`;
  return `ratelimit:${route}:${rule.id}:${who}`;
}
