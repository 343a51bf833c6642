import type { McpExchange } from './exchange.js';

/**
 * One step of the request path. It reads and fills in the exchange, and refuses by throwing a
 * Refusal. It returns a promise only when it has something to wait for (the IdP, the store, the
 * body, the upstream): a stage with nothing to wait for (a cached token, a route without budgets
 * or upstream credential) stays synchronous, and no interface pays for it.
 */
export type Stage = (exchange: McpExchange) => void | Promise<void>;

/**
 * The span each stage's step carries when the request is traced, by the stage function's name:
 * what it does, in the words of the issue that asked for them (token verification, the store,
 * the policy, the upstream call).
 */
const STEP_NAMES: Readonly<Record<string, string>> = {
  origin: 'check origin',
  authenticate: 'verify token',
  routeScopes: 'check route scopes',
  session: 'check session',
  readAndDecide: 'decide policy',
  budgets: 'spend budgets',
  upstreamCredential: 'obtain upstream credential',
  forward: 'call upstream',
  relay: 'relay answer',
};

/**
 * Runs the stages in order until one answers the request itself or refuses, awaiting only what
 * a stage returns as a promise. Returns a promise only if some stage did.
 */
export function runStages(stages: readonly Stage[], exchange: McpExchange, from = 0): void | Promise<void> {
  if (exchange.trace) return runTracedStages(stages, exchange, from);
  for (let next = from; next < stages.length && !exchange.answered; next++) {
    const pending = stages[next]!(exchange);
    if (pending !== undefined) return new Promise((resolve, reject) => new StagesAfterWait(stages, exchange, next + 1, resolve, reject).after(pending));
  }
  return undefined;
}

/**
 * The stages left once one had to wait, run by one object and settling one promise. A promise
 * per waiting stage that resolves to the next stage's promise would nest them, and each nesting
 * costs the request two more turns of the microtask queue and their objects.
 */
class StagesAfterWait {
  private readonly resume = (): void => this.run();

  constructor(
    private readonly stages: readonly Stage[],
    private readonly exchange: McpExchange,
    private next: number,
    private readonly resolve: () => void,
    private readonly reject: (error: unknown) => void,
  ) {}

  after(pending: Promise<void>): void {
    pending.then(this.resume, this.reject);
  }

  private run(): void {
    const { stages, exchange } = this;
    try {
      while (this.next < stages.length && !exchange.answered) {
        const pending = stages[this.next++]!(exchange);
        if (pending !== undefined) return this.after(pending);
      }
    } catch (error) {
      return this.reject(error);
    }
    this.resolve();
  }
}

/** The same, each stage timed as a step of the request's trace (only when tracing is on). */
function runTracedStages(stages: readonly Stage[], exchange: McpExchange, from: number): void | Promise<void> {
  const trace = exchange.trace!;
  for (let next = from; next < stages.length && !exchange.answered; next++) {
    const stage = stages[next]!;
    trace.beginStep(STEP_NAMES[stage.name] ?? stage.name);
    let pending: void | Promise<void>;
    try {
      pending = stage(exchange);
    } catch (error) {
      trace.endStep(describe(error));
      throw error;
    }
    if (pending !== undefined) {
      return pending.then(
        () => {
          trace.endStep();
          return runTracedStages(stages, exchange, next + 1);
        },
        (error: unknown) => {
          trace.endStep(describe(error));
          throw error;
        },
      );
    }
    trace.endStep();
  }
  return undefined;
}

/** A step's error as its span says it: a refusal's code, never its details. */
function describe(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : 'internal error';
}
