import { afterAll } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { Authenticator, type AuthRoute } from '../../src/auth/authenticate.js';
import { IssuerDirectory } from '../../src/auth/issuers.js';
import type { Principal } from '../../src/auth/principal.js';
import { VerifiedTokenCache } from '../../src/auth/token-cache.js';
import type { RouteConfig } from '../../src/config/types.js';
import { Lifecycle } from '../../src/http/lifecycle.js';
import { originChecker } from '../../src/http/origin.js';
import { RouteServices, type McpEndpointDeps } from '../../src/http/pipeline/route-services.js';
import { runStages, type Stage } from '../../src/http/pipeline/stage.js';
import { authenticateStage } from '../../src/http/pipeline/stages/authenticate.js';
import { budgetsStage } from '../../src/http/pipeline/stages/budgets.js';
import { forwardStage } from '../../src/http/pipeline/stages/forward.js';
import { originStage } from '../../src/http/pipeline/stages/origin.js';
import { readAndDecideStage } from '../../src/http/pipeline/stages/read-and-decide.js';
import { relayStage } from '../../src/http/pipeline/stages/relay.js';
import { routeScopesStage } from '../../src/http/pipeline/stages/route-scopes.js';
import { sessionStage } from '../../src/http/pipeline/stages/session.js';
import { upstreamCredentialStage } from '../../src/http/pipeline/stages/upstream-credential.js';
import { UpstreamCredentials } from '../../src/upstream-auth/registry.js';
import { routeRuntime, type RouteRuntime } from '../../src/http/routes.js';
import { SessionBindings } from '../../src/mcp/sessions.js';
import type { Logger } from '../../src/observability/logger.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { parsePolicy } from '../../src/policy/load.js';
import { Forwarder } from '../../src/proxy/forward.js';
import { RateLimiter } from '../../src/ratelimit/limiter.js';
import { MemoryStore, type MemoryStoreLimits } from '../../src/store/memory.js';
import { issuerConfig } from './config-fixtures.js';
import { captureLogs } from './log-capture.js';
import { TestExchange, type RequestSpec } from './pipeline-exchange.js';

/**
 * One route's pipeline built from real parts, none of which opens a socket: a memory store,
 * session bindings and rate limiter over it, a compiled policy, and an Authenticator whose
 * issuer's keys are inline (`jwks:`), so no key is ever fetched. Tokens are signed here with
 * the issuer's private key.
 */

export const PUBLIC_URL = 'https://gateway.example.test';
export const ISSUER = 'https://idp.example.test';
export const RESOURCE = `${PUBLIC_URL}/mcp`;
/** An origin allowed besides publicUrl's (allowedOrigins). */
export const ALLOWED_ORIGIN = 'https://app.example.test';

/** The todo route's policy, cut down: a read tool, a write tool, and one nobody may call. */
export const TODO_POLICY = `
scopes: [todo:read]
tools:
  list_todos: [todo:read]
  add_todo: [todo:write]
  secret_tool: deny
`;

interface IssuerKey {
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

let issuerKey: Promise<IssuerKey> | undefined;

/** One key for every world in a test file: generating it is the slowest thing here. */
function sharedIssuerKey(): Promise<IssuerKey> {
  issuerKey ??= generateKeyPair('ES256').then(async ({ privateKey, publicKey }) => ({ privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' } }));
  return issuerKey;
}

export type StageName = 'origin' | 'authenticate' | 'routeScopes' | 'session' | 'readAndDecide' | 'budgets' | 'upstreamCredential' | 'forward' | 'relay';

export interface WorldOptions {
  /** The route's policy, as YAML; TODO_POLICY when not given. */
  readonly policy?: string;
  /** Route settings over the defaults (name todo, path /mcp, step-ups as challenges). */
  readonly route?: Partial<Omit<RouteConfig, 'policy'>>;
  readonly storeLimits?: MemoryStoreLimits;
  /** The forward stage's only stand-in (see forward.test.ts); a real, never-called Forwarder otherwise. */
  readonly forwarder?: Forwarder;
  readonly maxBodyBytes?: number;
}

export class PipelineWorld {
  readonly store: MemoryStore;
  readonly sessions: SessionBindings;
  readonly rateLimiter: RateLimiter;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** Every line logged, parsed. */
  readonly logs: Record<string, unknown>[];
  readonly lifecycle = new Lifecycle();
  readonly authenticator: Authenticator;
  readonly forwarder: Forwarder;
  /** The route's upstream credential source, when its config has upstreamAuth (real files, no sockets). */
  readonly upstreamCredentials: UpstreamCredentials;
  readonly deps: McpEndpointDeps;
  readonly route: RouteRuntime;
  readonly services: RouteServices;
  readonly stages: Readonly<Record<StageName, Stage>>;
  private readonly authRoute: AuthRoute;

  private constructor(
    private readonly key: IssuerKey,
    options: WorldOptions,
  ) {
    const parsed = parsePolicy('policy.yaml', options.policy ?? TODO_POLICY);
    if (!parsed.ok) throw new Error(`policy fixture invalid: ${JSON.stringify(parsed.problems)}`);
    const config: RouteConfig = {
      name: 'todo',
      path: '/mcp',
      // Never contacted: only the forward stage reaches the forwarder, and there it is a stand-in.
      upstream: new URL('http://upstream.invalid:9/mcp'),
      forwardHeaders: [],
      onStoreError: 'deny',
      identityHeaders: {},
      audit: { arguments: false, redact: [] },
      stepUp: { answer: 'challenge' },
      ...options.route,
      policy: parsed.policy,
    };
    const issuers = [issuerConfig(ISSUER, { jwks: { keys: [key.publicJwk] } })];
    this.store = new MemoryStore(options.storeLimits ?? {});
    ({ logger: this.logger, logs: this.logs } = captureLogs());
    this.sessions = new SessionBindings(this.store, { idleTimeoutMs: 60_000, maxPerPrincipal: 10 });
    this.rateLimiter = new RateLimiter(this.store, this.logger);
    this.metrics = new GatewayMetrics({ store: this.store }, { processMetrics: false });
    this.authenticator = new Authenticator(new IssuerDirectory(issuers, 1_000, this.logger), new VerifiedTokenCache(), this.store);
    this.forwarder = options.forwarder ?? new Forwarder();
    this.upstreamCredentials = new UpstreamCredentials(this.store, this.logger);
    this.upstreamCredentials.update([config], 1_000);
    this.deps = {
      authenticator: this.authenticator,
      sessions: this.sessions,
      rateLimiter: this.rateLimiter,
      forwarder: this.forwarder,
      logger: this.logger,
      metrics: this.metrics,
      lifecycle: this.lifecycle,
      identitySigner: undefined,
      checkOrigin: originChecker(PUBLIC_URL, [ALLOWED_ORIGIN]),
      maxBodyBytes: options.maxBodyBytes ?? 64 * 1024,
      upstreamResponseTimeoutMs: 5_000,
      upstreamConnectTimeoutMs: 1_000,
      upstreamCredentials: this.upstreamCredentials,
    };
    this.route = routeRuntime(config, PUBLIC_URL, issuers);
    this.authRoute = { name: config.name, resource: this.route.resource };
    this.services = new RouteServices(this.route, this.deps);
    this.stages = {
      origin: originStage(this.services),
      authenticate: authenticateStage(this.services),
      routeScopes: routeScopesStage(this.services),
      session: sessionStage(this.services),
      readAndDecide: readAndDecideStage(this.services),
      budgets: budgetsStage(this.services),
      // Routes without upstreamAuth have no such stage: here it then does nothing.
      upstreamCredential: this.services.upstreamAuth ? upstreamCredentialStage(this.services.upstreamAuth) : () => undefined,
      forward: forwardStage(this.services),
      relay: relayStage(this.services),
    };
  }

  static async create(options: WorldOptions = {}): Promise<PipelineWorld> {
    return new PipelineWorld(await sharedIssuerKey(), options);
  }

  /** An RFC 9068 access token for this route (subject user-42, client agent-1, scope todo:read) unless `claims` say otherwise. */
  token(claims: Record<string, unknown> = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: ISSUER, sub: 'user-42', aud: RESOURCE, client_id: 'agent-1', scope: 'todo:read', iat: now - 5, exp: now + 300, ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
      .sign(this.key.privateKey);
  }

  /** The principal such a token is admitted as, verified by the route's Authenticator. */
  async principal(claims: Record<string, unknown> = {}): Promise<Principal> {
    return this.authenticator.authenticate(`Bearer ${await this.token(claims)}`, this.authRoute, { method: 'POST', dpopProofs: [] });
  }

  /** A request carrying a token with `claims` (see token()). */
  async request(spec: RequestSpec = {}, claims: Record<string, unknown> = {}): Promise<TestExchange> {
    return new TestExchange({ ...spec, headers: { authorization: `Bearer ${await this.token(claims)}`, 'content-type': 'application/json', ...spec.headers } });
  }

  /** Runs the named stages, in the pipeline's order, as the endpoint would (a refusal rejects). */
  async through(test: TestExchange, ...names: StageName[]): Promise<void> {
    await runStages(names.map((name) => this.stages[name]), test.exchange);
  }

  /** A counter's value (summed over the series whose labels include `labels`). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = this.metrics.registry.getSingleMetric(name);
    if (!metric) throw new Error(`no metric ${name}`);
    const { values } = await metric.get();
    return values.filter((value) => Object.entries(labels).every(([label, wanted]) => value.labels[label] === wanted)).reduce((sum, value) => sum + value.value, 0);
  }

  /** The audit events logged so far (one per decision). */
  get audits(): Record<string, unknown>[] {
    return this.logs.filter((line) => line.event === 'authz');
  }

  async close(): Promise<void> {
    this.forwarder.close();
    this.upstreamCredentials.close();
    await this.store.close();
  }
}

/** A JSON-RPC request body. */
export function rpc(id: number | string, method: string, params: Record<string, unknown> = {}): Record<string, unknown> {
  return { jsonrpc: '2.0', id, method, params };
}

export function toolCall(id: number | string, name: string, args: Record<string, unknown> = {}): Record<string, unknown> {
  return rpc(id, 'tools/call', { name, arguments: args });
}

export function initialize(id: number | string, protocolVersion = '2025-06-18'): Record<string, unknown> {
  return rpc(id, 'initialize', { protocolVersion, capabilities: {}, clientInfo: { name: 'unit', version: '1.0.0' } });
}

/**
 * For one describe block: a maker of worlds (each built with its options), all of which are
 * closed once the block's tests are done.
 */
export function worldsClosedAfterAll(): (options?: WorldOptions) => Promise<PipelineWorld> {
  const worlds: PipelineWorld[] = [];
  afterAll(async () => {
    for (const made of worlds) await made.close();
  });
  return async (options = {}) => {
    const made = await PipelineWorld.create(options);
    worlds.push(made);
    return made;
  };
}
