import type { Authenticator } from '../../auth/authenticate.js';
import { DPOP_ALGORITHMS } from '../../auth/dpop.js';
import type { Principal } from '../../auth/principal.js';
import type { McpBody } from '../../mcp/message.js';
import type { ListMethod } from '../../mcp/server-message-filter.js';
import type { SessionBindings } from '../../mcp/sessions.js';
import type { Logger } from '../../observability/logger.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import type { Tracing } from '../../observability/tracing.js';
import { decideRequest, mayReadResource } from '../../policy/evaluate.js';
import type { CompiledPolicy } from '../../policy/types.js';
import type { Forwarder } from '../../proxy/forward.js';
import type { IdentitySigner } from '../../proxy/identity.js';
import type { StreamRegistry } from '../../proxy/stream-gate.js';
import type { RateLimiter } from '../../ratelimit/limiter.js';
import type { CredentialSource, UpstreamCredentials } from '../../upstream-auth/registry.js';
import type { Lifecycle } from '../lifecycle.js';
import { RouteListFilters } from '../list-filters.js';
import type { RefusalContext } from '../refusal.js';
import type { RouteRuntime } from '../routes.js';
import type { RelayPlan } from './relay-plan.js';

/** What the MCP pipeline uses, made once by the composition root (src/gateway.ts) and shared by every route. */
export interface McpEndpointDeps {
  readonly authenticator: Authenticator;
  readonly sessions: SessionBindings;
  readonly rateLimiter: RateLimiter;
  readonly forwarder: Forwarder;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  readonly lifecycle: Lifecycle;
  /** Signs identity tokens for routes that send one; undefined when no route does. */
  readonly identitySigner: IdentitySigner | undefined;
  readonly checkOrigin: (origin: string | undefined) => void;
  readonly maxBodyBytes: number;
  /** OpenTelemetry traces; undefined when tracing is off (then a request pays nothing for it). */
  readonly tracing?: Tracing | undefined;
  readonly upstreamResponseTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
  /** Where routes with upstreamAuth get their upstream credential; needed only when some route has one. */
  readonly upstreamCredentials?: UpstreamCredentials | undefined;
}

/** What a principal may hear about on a stream, worked out once per principal. */
export type Visibility = Pick<RelayPlan, 'resourceUpdateVisible' | 'listVisible' | 'hidesNotifications'>;

/**
 * Everything one route's stages share, made once per route (per config): its policy, how its
 * refusals are rendered, what each principal may see, and where its streams are registered.
 * Nothing here holds a request: a stream open for hours keeps only what it needs from it.
 */
export class RouteServices {
  readonly policy: CompiledPolicy;
  readonly name: string;
  /** Lists are filtered only for what the policy can hide, per principal where rules have conditions. */
  readonly listFilters: RouteListFilters;
  /**
   * One registry per route, not a closure per stream: a closure made per request would keep the
   * request's whole scope alive for as long as the stream stays open.
   */
  readonly streams: StreamRegistry;
  /** Where this route's upstream credential comes from (routes[].upstreamAuth); undefined: none is sent. */
  readonly upstreamAuth: CredentialSource | undefined;
  private readonly refusalContexts: { readonly single: RefusalContext; readonly batch: RefusalContext };
  /** A verified token's principal is the same object on every request (VerifiedTokenCache): its visibility is worked out once. */
  private readonly visibilities = new WeakMap<Principal, Visibility>();

  constructor(
    readonly route: RouteRuntime,
    readonly deps: McpEndpointDeps,
  ) {
    this.policy = route.config.policy;
    this.name = route.config.name;
    this.listFilters = new RouteListFilters(this.policy);
    this.upstreamAuth = route.config.upstreamAuth ? deps.upstreamCredentials?.sourceFor(route.config) : undefined;
    // Forwarding without the credential the route asks for would send the upstream an anonymous
    // request: a wiring mistake fails here, at build time, never per request.
    if (route.config.upstreamAuth && !this.upstreamAuth) throw new Error(`route '${route.config.name}' has upstreamAuth but no credential source`);
    const base: RefusalContext = {
      resourceMetadataUrl: route.resourceMetadataUrl,
      routeScopes: this.policy.routeScopes,
      // Where an issuer requires DPoP, every challenge offers it (RFC 9449 §7.1).
      ...(route.requiresDpop ? { dpop: { algs: DPOP_ALGORITHMS } } : {}),
    };
    // Made once per route rather than spread per request: a refused batch is answered with an array.
    this.refusalContexts = { single: { ...base, isBatch: false }, batch: { ...base, isBatch: true } };
    const { lifecycle, metrics } = deps;
    const name = this.name;
    this.streams = {
      opened(stream) {
        lifecycle.streamOpened(stream);
        metrics.streamOpened(name);
      },
      closed(stream) {
        lifecycle.streamClosed(stream);
        metrics.streamClosed(name);
      },
    };
  }

  refusalContext(body: McpBody | undefined): RefusalContext {
    return body?.isBatch ? this.refusalContexts.batch : this.refusalContexts.single;
  }

  visibilityOf(principal: Principal): Visibility {
    let visibility = this.visibilities.get(principal);
    if (visibility === undefined) this.visibilities.set(principal, (visibility = visibilityFor(this.policy, principal)));
    return visibility;
  }
}

/**
 * Made here, not in a stage: a stream's filter keeps these for as long as the stream is open, and
 * a closure made while handling the request would keep the whole exchange alive with it.
 */
function visibilityFor(policy: CompiledPolicy, principal: Principal): Visibility {
  const listVisible = (list: ListMethod) => decideRequest(policy, principal.scopes, { kind: 'other', method: list }, principal).effect === 'allow';
  return {
    // Updates about a resource go only to whoever may read it (a subscribed URI's children
    // included): the listen stream of 2026-07-28 and the GET stream alike.
    resourceUpdateVisible: policy.resources ? (uri: string) => mayReadResource(policy, principal.scopes, uri, principal) : undefined,
    listVisible,
    hidesNotifications: policy.resources !== undefined || !listVisible('tools/list') || !listVisible('prompts/list') || !listVisible('resources/list'),
  };
}
