import { afterEach, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { JSONRPC_SERVER_ERROR, Refusal, type RequestId } from '../../src/errors.js';
import { renderRefusal } from '../../src/http/refusal.js';
import { parseMcpBody } from '../../src/mcp/message.js';
import { createLogger } from '../../src/observability/logger.js';
import { decideBody, type MessageDecision } from '../../src/policy/enforce.js';
import { decideToolCall } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { rateLimitCharges, type RateLimitCharge } from '../../src/policy/rate-limits.js';
import type { CompiledPolicy, RateLimitRule } from '../../src/policy/types.js';
import { RateLimiter, type OnStoreError } from '../../src/ratelimit/limiter.js';
import { gcraStep } from '../../src/store/gcra.js';
import { MemoryStore } from '../../src/store/memory.js';
import { StoreUnavailableError, type KeyValueStore } from '../../src/store/types.js';
import { rejectionOf } from '../support/refusals.js';

const granted = (...scopes: string[]) => new Set(scopes);

function policyFromYaml(text: string): CompiledPolicy {
  const result = parsePolicy('policy.yaml', text);
  if (!result.ok) throw new Error(`policy fixture invalid: ${JSON.stringify(result.problems)}`);
  return result.policy;
}

/** The problems `parsePolicy` reports for `text`, as `line:col message`. */
function problemsOf(text: string): string[] {
  const result = parsePolicy('policy.yaml', text);
  if (result.ok) throw new Error('expected problems, the policy loaded');
  expect(result.problems.every((p) => p.file === 'policy.yaml')).toBe(true);
  return result.problems.map((p) => `${p.line}:${p.col} ${p.message}`);
}

describe('policy rate limits: parsing', () => {
  const POLICY = `scopes: [todo:read]
rateLimit: { requests: 120, per: 1m }
tools:
  list_todos: [todo:read]
  search:
    rateLimit: { requests: 10, per: 30s, by: client }
  "admin_*":
    scopes: [todo:admin]
    rateLimit: { requests: 5, per: 1h }
  secret_tool: deny
`;

  it('compiles the route limit and tool limits, with by defaulting to subject', () => {
    const policy = policyFromYaml(POLICY);
    expect(policy.routeRateLimit).toEqual({ id: 'rateLimit', requests: 120, periodMs: 60_000, by: 'subject' });
    expect(policy.exactTools.get('search')?.rateLimit).toEqual({ id: 'tools["search"].rateLimit', requests: 10, periodMs: 30_000, by: 'client' });
    expect(policy.globTools.map((rule) => [rule.pattern, rule.rateLimit])).toEqual([
      ['admin_*', { id: 'tools["admin_*"].rateLimit', requests: 5, periodMs: 3_600_000, by: 'subject' }],
    ]);
  });

  it('keeps the list form and deny working beside the object form', () => {
    const policy = policyFromYaml(POLICY);
    expect(policy.exactTools.get('list_todos')).toMatchObject({ requirement: { kind: 'scopes', scopes: ['todo:read'] } });
    expect(policy.exactTools.get('list_todos')?.rateLimit).toBeUndefined();
    expect(policy.exactTools.get('secret_tool')?.requirement).toEqual({ kind: 'deny' });
    expect(policy.scopesSupported).toEqual(['todo:read', 'todo:admin']);
    expect(decideToolCall(policy, granted('todo:read'), 'list_todos')).toMatchObject({ effect: 'allow' });
    expect(decideToolCall(policy, granted('todo:read'), 'secret_tool')).toMatchObject({ effect: 'deny', reason: 'tool-denied' });
    expect(decideToolCall(policy, granted('todo:read'), 'admin_users')).toMatchObject({ effect: 'step-up', missing: ['todo:admin'] });
    expect(decideToolCall(policy, granted('todo:read', 'todo:admin'), 'admin_users')).toMatchObject({ effect: 'allow' });
  });

  it('lets an object form without scopes through on the route scopes alone', () => {
    const policy = policyFromYaml(POLICY);
    expect(policy.exactTools.get('search')?.requirement).toEqual({ kind: 'scopes', scopes: [] });
    expect(decideToolCall(policy, granted('todo:read'), 'search')).toEqual({ effect: 'allow', reason: 'tool-allowed', rule: 'tools["search"]' });
  });

  it('refuses a budget finer than one request per microsecond (it would round to no limit)', () => {
    expect(problemsOf('rateLimit: { requests: 2000, per: 1ms }\n')).toEqual([
      '1:24 rateLimit.requests is more than one per microsecond; use a longer per',
    ]);
    expect(parsePolicy('p.yaml', 'rateLimit: { requests: 1000, per: 1ms }\n').ok).toBe(true);
  });

  it('refuses a zero period where it is written, at the route and on a tool', () => {
    expect(problemsOf('scopes: [a]\nrateLimit: { requests: 5, per: 0s }\n')).toEqual(['2:32 rateLimit.per must be longer than 0']);
    expect(problemsOf('tools:\n  "admin_*":\n    scopes: [x]\n    rateLimit:\n      requests: 5\n      per: 0ms\n')).toEqual([
      '6:12 tools.admin_*.rateLimit.per must be longer than 0',
    ]);
  });

  it('refuses zero requests and an unknown by', () => {
    expect(problemsOf('rateLimit:\n  requests: 0\n  per: 1m\n')).toEqual(['2:13 rateLimit.requests must be >= 1']);
    expect(problemsOf('rateLimit:\n  requests: 5\n  per: 1m\n  by: team\n')).toEqual(['4:7 rateLimit.by must be one of "subject", "client"']);
  });

  it('names an unknown key inside a tool rate limit at the key', () => {
    expect(problemsOf('tools:\n  search:\n    rateLimit: { requests: 5, per: 1m, burst: 5 }\n')).toEqual([
      "3:40 unknown key 'burst' in tools.search.rateLimit",
    ]);
  });

  it('refuses an object form with a typo for scopes (it would otherwise need only the route scopes), suggesting the key', () => {
    expect(problemsOf('tools:\n  search:\n    scope: [todo:admin]\n    rateLimit: { requests: 5, per: 1m }\n')).toEqual([
      "3:5 unknown key 'scope' in tools.search (did you mean 'scopes'?)",
    ]);
  });

  it('has no way to put a rate limit on deny', () => {
    expect(problemsOf('tools:\n  search: { deny: true, rateLimit: { requests: 5, per: 1m } }\n')).toEqual([
      "2:13 unknown key 'deny' in tools.search (it must be a list of scopes, deny, or {scopes | anyOf, when, arguments, rateLimit})",
    ]);
  });
});

describe('rateLimitCharges', () => {
  const TOOL_RULES = `tools:
  list_todos: [todo:read]
  "search_*":
    rateLimit: { requests: 10, per: 1m }
  "admin_*":
    scopes: [todo:admin]
    rateLimit: { requests: 5, per: 1m }
`;
  const withRouteLimit = policyFromYaml(`scopes: [todo:read]\nrateLimit: { requests: 100, per: 1m }\n${TOOL_RULES}`);
  const toolLimitsOnly = policyFromYaml(`scopes: [todo:read]\n${TOOL_RULES}`);

  const callOf = (id: number, tool: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: {} } });
  const requestOf = (id: number, method: string) => ({ jsonrpc: '2.0', id, method });

  function decisionsFor(policy: CompiledPolicy, scopes: Set<string>, json: unknown): MessageDecision[] {
    return decideBody(policy, scopes, parseMcpBody(Buffer.from(JSON.stringify(json)), '2025-03-26'));
  }

  /** Charges as `rule id × cost`, readable in a failure. */
  const summary = (charges: RateLimitCharge[]) => charges.map(({ rule, cost }) => `${rule.id} x${cost}`);
  const searchRule = () => toolLimitsOnly.globTools.find((rule) => rule.pattern === 'search_*')!.rateLimit!;

  it('charges the route limit once for a request that calls no tool', () => {
    const charges = rateLimitCharges(withRouteLimit, decisionsFor(withRouteLimit, granted('todo:read'), requestOf(1, 'tools/list')));
    expect(charges).toEqual([{ rule: withRouteLimit.routeRateLimit, cost: 1 }]);
  });

  it('charges the route limit for a GET or DELETE (no decisions) and nothing without one', () => {
    expect(summary(rateLimitCharges(withRouteLimit, []))).toEqual(['rateLimit x1']);
    expect(rateLimitCharges(toolLimitsOnly, [])).toEqual([]);
  });

  it('charges a limited tool call once, beside the route', () => {
    const decisions = decisionsFor(withRouteLimit, granted('todo:read'), callOf(1, 'search_web'));
    expect(summary(rateLimitCharges(withRouteLimit, decisions))).toEqual(['rateLimit x1', 'tools["search_*"].rateLimit x1']);
  });

  it('charges nothing for an allowed call of a tool without a limit', () => {
    const decisions = decisionsFor(toolLimitsOnly, granted('todo:read'), callOf(1, 'list_todos'));
    expect(decisions.map((d) => d.decision.effect)).toEqual(['allow']);
    expect(rateLimitCharges(toolLimitsOnly, decisions)).toEqual([]);
  });

  it('charges a glob rule once per call of a 2025-03-26 batch, and the route once', () => {
    const batch = [callOf(1, 'search_web'), callOf(2, 'search_docs'), requestOf(3, 'tools/list'), callOf(4, 'search_web'), callOf(5, 'list_todos')];
    const decisions = decisionsFor(withRouteLimit, granted('todo:read'), batch);
    expect(decisions.every((d) => d.decision.effect === 'allow')).toBe(true);
    expect(summary(rateLimitCharges(withRouteLimit, decisions))).toEqual(['rateLimit x1', 'tools["search_*"].rateLimit x3']);

    const toolsOnly = rateLimitCharges(toolLimitsOnly, decisionsFor(toolLimitsOnly, granted('todo:read'), batch));
    expect(toolsOnly).toEqual([{ rule: searchRule(), cost: 3 }]);
    expect(toolsOnly[0]!.rule).toBe(searchRule());
  });

  it('charges nothing for calls that need a step-up', () => {
    const toolStepUp = decisionsFor(toolLimitsOnly, granted('todo:read'), callOf(1, 'admin_users'));
    expect(toolStepUp.map((d) => d.decision.effect)).toEqual(['step-up']);
    expect(rateLimitCharges(toolLimitsOnly, toolStepUp)).toEqual([]);

    const routeStepUp = decisionsFor(toolLimitsOnly, granted(), callOf(1, 'search_web'));
    expect(routeStepUp.map((d) => d.decision)).toEqual([expect.objectContaining({ effect: 'step-up', reason: 'route-scopes-missing' })]);
    expect(rateLimitCharges(toolLimitsOnly, routeStepUp)).toEqual([]);
  });

  it('charges nothing for a denied call, even of a tool a limited rule matches', () => {
    const [allowed] = decisionsFor(toolLimitsOnly, granted('todo:read'), callOf(1, 'search_web'));
    const denied: MessageDecision = { message: allowed!.message, decision: { effect: 'deny', reason: 'tool-denied' } };
    expect(rateLimitCharges(toolLimitsOnly, [allowed!])).toHaveLength(1);
    expect(rateLimitCharges(toolLimitsOnly, [denied])).toEqual([]);
  });
});

describe('RateLimiter', () => {
  const logger = createLogger('silent');
  const START = 1_700_000_000_000;
  let now = START;
  const stores: MemoryStore[] = [];

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    now = START;
  });

  function memoryLimiter(): RateLimiter {
    const store = new MemoryStore(1_000, () => now);
    stores.push(store);
    return new RateLimiter(store, logger);
  }

  function principal(subject: string, clientId?: string, issuer = 'https://idp.example.test'): Principal {
    return { issuer, subject, clientId, scopes: new Set(), expiresAt: START / 1000 + 3600, claims: {} };
  }

  const rule = (requests: number, periodMs: number, by: RateLimitRule['by'] = 'subject', id = 'rateLimit'): RateLimitRule => ({ id, requests, periodMs, by });

  /** As the endpoint calls it: a refusal thrown at once (memory) or a rejection (a store to wait for) alike. */
  async function enforce(limiter: RateLimiter, who: Principal, charges: RateLimitCharge[], rpcIds: RequestId[] = [], onStoreError: OnStoreError = 'deny'): Promise<void> {
    await limiter.enforce({ route: 'todo', charges, principal: who, rpcIds, onStoreError });
  }

  it('allows up to the budget, then refuses with rate_limited, Retry-After and the request ids', async () => {
    const limiter = memoryLimiter();
    const limit = rule(3, 60_000);
    const alice = principal('alice');
    for (let i = 0; i < 3; i++) await expect(enforce(limiter, alice, [{ rule: limit, cost: 1 }])).resolves.toBeUndefined();
    const refusal = await rejectionOf(enforce(limiter, alice, [{ rule: limit, cost: 1 }], [7, 'b']));
    expect(refusal.code).toBe('rate_limited');
    expect(refusal.details.rpcIds).toEqual([7, 'b']);
    expect(refusal.details.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(refusal.details.retryAfterSeconds).toBe(Math.ceil(limit.periodMs / limit.requests / 1000));

    now += limit.periodMs / limit.requests;
    await expect(enforce(limiter, alice, [{ rule: limit, cost: 1 }])).resolves.toBeUndefined();
  });

  it('spends a cost of several calls at once', async () => {
    const limiter = memoryLimiter();
    const limit = rule(5, 60_000);
    await enforce(limiter, principal('alice'), [{ rule: limit, cost: 4 }]);
    await expect(enforce(limiter, principal('alice'), [{ rule: limit, cost: 2 }])).rejects.toMatchObject({ code: 'rate_limited' });
    await expect(enforce(limiter, principal('alice'), [{ rule: limit, cost: 1 }])).resolves.toBeUndefined();
  });

  it('refuses a request costing more than the whole budget without a Retry-After (waiting cannot help)', async () => {
    const store = new MemoryStore();
    const limiter = new RateLimiter(store, logger);
    const refusal = await rejectionOf(enforce(limiter, principal('alice'), [{ rule: rule(5, 60_000), cost: 6 }], [1, 2]));
    expect(refusal.code).toBe('rate_limited');
    expect(refusal.details.retryAfterSeconds).toBeUndefined();
    expect(refusal.details.rpcIds).toEqual([1, 2]);
    // Nothing was spent: a later single call still has the whole budget.
    for (let i = 0; i < 5; i++) await expect(enforce(limiter, principal('alice'), [{ rule: rule(5, 60_000), cost: 1 }])).resolves.toBeUndefined();
    await store.close();
  });

  it('names the spent budget when one of several charges is refused', async () => {
    const limiter = memoryLimiter();
    const charges = [
      { rule: rule(100, 60_000), cost: 1 },
      { rule: rule(1, 60_000, 'subject', 'tools["search_*"].rateLimit'), cost: 1 },
    ];
    await enforce(limiter, principal('alice'), charges);
    const refusal = await rejectionOf(enforce(limiter, principal('alice'), charges));
    expect(refusal.message).toContain('tools["search_*"].rateLimit');
  });

  it('keeps one budget per subject, and the same subject at another issuer is someone else', async () => {
    const limiter = memoryLimiter();
    const charges = [{ rule: rule(1, 60_000), cost: 1 }];
    await enforce(limiter, principal('alice'), charges);
    await expect(enforce(limiter, principal('alice'), charges)).rejects.toMatchObject({ code: 'rate_limited' });
    await expect(enforce(limiter, principal('bob'), charges)).resolves.toBeUndefined();
    await expect(enforce(limiter, principal('alice', undefined, 'https://other-idp.example.test'), charges)).resolves.toBeUndefined();
  });

  it('keeps one budget per subject even when subjects share a client, under by: subject', async () => {
    const limiter = memoryLimiter();
    const charges = [{ rule: rule(1, 60_000, 'subject'), cost: 1 }];
    await enforce(limiter, principal('alice', 'agent'), charges);
    await expect(enforce(limiter, principal('bob', 'agent'), charges)).resolves.toBeUndefined();
  });

  it('shares a by: client budget between two subjects of one client', async () => {
    const limiter = memoryLimiter();
    const charges = [{ rule: rule(1, 60_000, 'client'), cost: 1 }];
    await enforce(limiter, principal('alice', 'agent'), charges);
    await expect(enforce(limiter, principal('bob', 'agent'), charges)).rejects.toMatchObject({ code: 'rate_limited' });
    await expect(enforce(limiter, principal('bob', 'other-agent'), charges)).resolves.toBeUndefined();
  });

  it('counts a by: client budget per subject when the token names no client', async () => {
    const limiter = memoryLimiter();
    const charges = [{ rule: rule(1, 60_000, 'client'), cost: 1 }];
    await enforce(limiter, principal('carol'), charges);
    await expect(enforce(limiter, principal('dave'), charges)).resolves.toBeUndefined();
    await expect(enforce(limiter, principal('carol'), charges)).rejects.toMatchObject({ code: 'rate_limited' });
  });

  it('keeps one budget per route for the same principal and rule objects', async () => {
    const limiter = memoryLimiter();
    const alice = principal('alice');
    const charges = [{ rule: rule(1, 60_000), cost: 1 }];
    const on = async (route: string) => limiter.enforce({ route, charges, principal: alice, rpcIds: [], onStoreError: 'deny' });
    await on('todo');
    await expect(on('todo')).rejects.toMatchObject({ code: 'rate_limited' });
    await expect(on('notes')).resolves.toBeUndefined();
    await expect(on('notes')).rejects.toMatchObject({ code: 'rate_limited' });
    // Another object for the same subject still spends the same budget.
    await expect(enforce(limiter, principal('alice'), charges)).rejects.toMatchObject({ code: 'rate_limited' });
  });

  it('spends from a memory store: allowed while the budget holds, refused with rate_limited once spent', async () => {
    const limiter = memoryLimiter();
    const request = { route: 'todo', charges: [{ rule: rule(1, 60_000), cost: 1 }], principal: principal('alice'), rpcIds: [4], onStoreError: 'deny' as const };
    await expect(limiter.enforce(request)).resolves.toBeUndefined();
    await expect(limiter.enforce(request)).rejects.toMatchObject({ code: 'rate_limited' });
  });

  it('takes a full memory store as a store failure: onStoreError decides', async () => {
    const store = new MemoryStore(1, () => now);
    stores.push(store);
    const limiter = new RateLimiter(store, logger);
    const charges = [{ rule: rule(10, 60_000), cost: 1 }];
    // The one entry is alice's budget; bob's would be a second.
    await expect(limiter.enforce({ route: 'todo', charges, principal: principal('alice'), rpcIds: [], onStoreError: 'deny' })).resolves.toBeUndefined();
    await expect(limiter.enforce({ route: 'todo', charges, principal: principal('bob'), rpcIds: [5], onStoreError: 'deny' })).rejects.toMatchObject({
      code: 'store_unavailable',
      details: expect.objectContaining({ rpcIds: [5] }),
    });
    await expect(limiter.enforce({ route: 'todo', charges, principal: principal('bob'), rpcIds: [5], onStoreError: 'allow' })).resolves.toBeUndefined();
  });

  describe('when the store cannot answer', () => {
    /** A store that is down: every operation rejects, and each call is counted. */
    class UnreachableStore implements KeyValueStore {
      calls = 0;
      get failedCalls(): number {
        return this.calls;
      }
      private fail = async (): Promise<never> => {
        this.calls++;
        throw new StoreUnavailableError('store unavailable: connection refused');
      };
      get = this.fail;
      hasRoom = () => true;
      getAndTouch = this.fail;
      set = this.fail;
      delete = this.fail;
      setIfAbsent = this.fail;
      recordOnce = this.fail;
      addToIndex = this.fail;
      indexMembers = this.fail;
      removeFromIndex = this.fail;
      consumeRate = this.fail;
      ping = this.fail;
      close = async () => {};
    }

    const charges = [{ rule: rule(10, 60_000), cost: 1 }];

    it("refuses with store_unavailable and Retry-After under onStoreError: 'deny'", async () => {
      const store = new UnreachableStore();
      const refusal = await rejectionOf(enforce(new RateLimiter(store, logger), principal('alice'), charges, [3], 'deny'));
      expect(refusal.code).toBe('store_unavailable');
      expect(refusal.details.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(refusal.details.rpcIds).toEqual([3]);
      expect(store.calls).toBe(1);
    });

    it('asks the store once per charge, even when it fails', async () => {
      const store = new UnreachableStore();
      await new RateLimiter(store, logger).enforce({ route: 'todo', charges, principal: principal('alice'), rpcIds: [], onStoreError: 'allow' });
      expect(store.calls).toBe(1);
    });

    it("lets the request through under onStoreError: 'allow'", async () => {
      const store = new UnreachableStore();
      await expect(enforce(new RateLimiter(store, logger), principal('alice'), charges, [3], 'allow')).resolves.toBeUndefined();
      expect(store.calls).toBe(1);
    });

    it('does not ask the store at all when nothing is charged', async () => {
      const store = new UnreachableStore();
      await expect(enforce(new RateLimiter(store, logger), principal('alice'), [], [3], 'deny')).resolves.toBeUndefined();
      expect(store.calls).toBe(0);
    });
  });
});

describe('gcraStep', () => {
  const limit = { requests: 4, periodMs: 1_000 };
  /** Times are microseconds; one request's worth refills every 250 ms. */
  const intervalMicros = 250_000;
  const t0 = 1_763_942_385_123_000;

  /** Runs `count` steps of cost 1 at `now` from `tat`; returns the TAT after the last allowed one. */
  function burst(tat: number | undefined, now: number, count: number, spec = limit): number | undefined {
    for (let i = 0; i < count; i++) {
      const step = gcraStep(tat, now, spec, 1);
      expect(step.result, `request ${i + 1} of ${count}`).toEqual({ allowed: true });
      tat = step.next!.tatMicros;
    }
    return tat;
  }

  it('allows a burst of `requests` at one instant, then refuses the next for period/requests', () => {
    const tat = burst(undefined, t0, limit.requests);
    const next = gcraStep(tat, t0, limit, 1);
    expect(next.result).toEqual({ allowed: false, retryAfterMs: 250 });
    expect(next.next).toBeUndefined();
  });

  it('allows one more after waiting retryAfterMs, and only one', () => {
    const spent = burst(undefined, t0, limit.requests);
    expect(gcraStep(spent, t0 + intervalMicros - 1_000, limit, 1).result).toEqual({ allowed: false, retryAfterMs: 1 });
    const after = burst(spent, t0 + intervalMicros, 1);
    expect(gcraStep(after, t0 + intervalMicros, limit, 1).result).toEqual({ allowed: false, retryAfterMs: 250 });
  });

  it('forgets a spent budget once a whole period has passed', () => {
    const tat = burst(undefined, t0, limit.requests);
    expect(burst(tat, t0 + limit.periodMs * 1000, limit.requests)).toBe(t0 + 2 * limit.periodMs * 1000);
  });

  it('stores the TAT for as long as it matters', () => {
    expect(gcraStep(undefined, t0, limit, 1).next).toEqual({ tatMicros: t0 + intervalMicros, ttlMs: 250 });
    expect(gcraStep(t0 + 3 * intervalMicros, t0, limit, 1).next).toEqual({ tatMicros: t0 + limit.periodMs * 1000, ttlMs: limit.periodMs });
  });

  it('lets a full burst through whatever the rate divides into (no float drift at real timestamps)', () => {
    // Regression: fractional-millisecond arithmetic refused the 7th of 7 per second.
    for (const periodMs of [1_000, 7_000, 60_000, 3_600_000]) {
      for (let requests = 1; requests <= 100; requests++) {
        const spec = { requests, periodMs };
        const tat = burst(undefined, t0, requests, spec);
        expect(gcraStep(tat, t0, spec, 1).result.allowed, `${requests} per ${periodMs} ms`).toBe(false);
      }
    }
  });

  it('allows a cost of exactly `requests` on a fresh budget, and refuses a larger one', () => {
    expect(gcraStep(undefined, t0, limit, limit.requests).result).toEqual({ allowed: true });
    const tooBig = gcraStep(undefined, t0, limit, limit.requests + 1);
    expect(tooBig.result.allowed).toBe(false);
    expect(tooBig.next).toBeUndefined();
  });
});

describe('renderRefusal for rate_limited', () => {
  const context = { resourceMetadataUrl: 'https://gw.example.test/.well-known/oauth-protected-resource/mcp', routeScopes: ['todo:read'] };

  it('answers 429 with Retry-After and a JSON-RPC error for the request, without a challenge', () => {
    const refusal = new Refusal('rate_limited', 'Rate limit exceeded (rateLimit: 3 per 60s)', { retryAfterSeconds: 20, rpcIds: [7] });
    const rendered = renderRefusal(refusal, context);
    expect(rendered.status).toBe(429);
    expect(rendered.headers['retry-after']).toBe('20');
    expect(rendered.headers['content-type']).toBe('application/json');
    expect(rendered.headers).not.toHaveProperty('www-authenticate');
    expect(JSON.parse(rendered.body)).toEqual({ jsonrpc: '2.0', id: 7, error: { code: JSONRPC_SERVER_ERROR, message: refusal.message } });
  });

  it('answers every request of a refused batch', () => {
    const refusal = new Refusal('rate_limited', 'Rate limit exceeded', { retryAfterSeconds: 1, rpcIds: [1, 'two'] });
    const rendered = renderRefusal(refusal, { ...context, isBatch: true });
    expect(rendered.headers['retry-after']).toBe('1');
    const error = { code: JSONRPC_SERVER_ERROR, message: 'Rate limit exceeded' };
    expect(JSON.parse(rendered.body)).toEqual([
      { jsonrpc: '2.0', id: 1, error },
      { jsonrpc: '2.0', id: 'two', error },
    ]);
  });

  it('renders the refusal the limiter raises', async () => {
    const store = new MemoryStore(10, () => 1_000_000);
    try {
      const limiter = new RateLimiter(store, createLogger('silent'));
      const who: Principal = { issuer: 'https://idp.example.test', subject: 'alice', clientId: undefined, scopes: new Set(), expiresAt: 0, claims: {} };
      const request = { route: 'todo', charges: [{ rule: { id: 'rateLimit', requests: 1, periodMs: 30_000, by: 'subject' as const }, cost: 1 }], principal: who, rpcIds: [9], onStoreError: 'deny' as const };
      await expect(limiter.enforce(request)).resolves.toBeUndefined();
      const refusal: unknown = await limiter.enforce(request).then(
        () => undefined,
        (error: unknown) => error,
      );
      if (!(refusal instanceof Refusal)) throw new Error('the spent budget was not refused');
      const rendered = renderRefusal(refusal, context);
      expect(rendered.status).toBe(429);
      expect(rendered.headers['retry-after']).toBe('30');
      expect(JSON.parse(rendered.body)).toMatchObject({ id: 9, error: { code: JSONRPC_SERVER_ERROR } });
    } finally {
      await store.close();
    }
  });
});
