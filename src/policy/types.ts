/** What a matched rule asks of a token. */
export type Requirement =
  | { readonly kind: 'scopes'; readonly scopes: readonly string[] }
  /** Any one of these scope sets suffices (e.g. a user's scopes, or an agent's). */
  | { readonly kind: 'anyOf'; readonly alternatives: readonly (readonly string[])[] }
  | { readonly kind: 'deny' };

/** Whose budget a rate limit counts against. */
export type RateLimitSubject = 'subject' | 'client';

/**
 * A budget of `requests` per `periodMs` for each subject (issuer + sub) or each client (issuer +
 * client id), shared by every replica through the store.
 */
export interface RateLimitRule {
  /** Names the budget in the store and in logs: `rateLimit`, or the tool rule's id. */
  readonly id: string;
  readonly requests: number;
  readonly periodMs: number;
  readonly by: RateLimitSubject;
}

export interface ToolRule {
  /** The rule as ops wrote it, for logs and `explain`: e.g. `tools["admin_*"]`. */
  readonly id: string;
  readonly pattern: string;
  readonly requirement: Requirement;
  readonly matches: (toolName: string) => boolean;
  /** Calls of every tool this rule matches share one budget per subject or client. */
  readonly rateLimit?: RateLimitRule;
  /** Who may use it at all, besides scopes: claims, subjects, clients (all that are given). */
  readonly when?: RuleCondition;
  /** tools only: constraints on named arguments of a tools/call, all of which must hold. */
  readonly arguments?: ReadonlyMap<string, ArgumentConstraint>;
}

/**
 * What one named argument may be: an exact value, one of several, or a string matching a path
 * glob (`*` within a `/` segment, `**` across; dot segments and encoded separators refused).
 */
export interface ArgumentConstraint {
  readonly describe: string;
  readonly allows: (value: unknown) => boolean;
}

export type ConditionValue = string | number | boolean;

/** A rule's `when`: every part given must hold. */
export interface RuleCondition {
  /** Claim names or dot paths to the value, or one of the values (array claims: any element). */
  readonly claims?: Readonly<Record<string, ConditionValue | readonly ConditionValue[]>>;
  /** The token's subject (the issuer's subject claim) must be one of these. */
  readonly subjects?: readonly string[];
  /** The token's client (agent identity) must be one of these. */
  readonly clients?: readonly string[];
}

/** What a policy may know of the token besides its scopes. */
export interface TokenFacts {
  readonly claims: Readonly<Record<string, unknown>>;
  readonly subject?: string;
  readonly clientId?: string;
}

/** A route policy compiled once at load time; evaluation never re-reads YAML. */
export interface CompiledPolicy {
  readonly file: string;
  /** Scopes every request on the route needs (the 401 challenge asks for them). */
  readonly routeScopes: readonly string[];
  /** Counts every HTTP request on the route (POST, GET, DELETE) after its token is verified. */
  readonly routeRateLimit?: RateLimitRule;
  readonly exactTools: ReadonlyMap<string, ToolRule>;
  /** Glob rules in file order; the first that matches wins. */
  readonly globTools: readonly ToolRule[];
  /** Every scope the policy names, route scopes first: RFC 9728 `scopes_supported`. */
  readonly scopesSupported: readonly string[];
  /** True when some token could call any tool (a `*` rule, no `deny`): lists need no filtering. */
  readonly showsEveryTool: boolean;
  /** `resources:` rules by URI; absent = resources need only the route scopes. */
  readonly resources?: RuleSet;
  /** `prompts:` rules by name; absent = prompts need only the route scopes. */
  readonly prompts?: RuleSet;
  /** `methods:` rules for any other method, by exact name. */
  readonly methods: ReadonlyMap<string, ToolRule>;
  /** `scopePatterns:` wildcard scopes a token may carry to hold a family of scopes. */
  readonly scopePatterns: readonly ScopePattern[];
}

/**
 * A scope ending in `*` that the policy honours: a token carrying exactly `scope` holds every
 * scope the policy names that starts with `prefix` (e.g. `mcp:exec:workflows:*`).
 */
export interface ScopePattern {
  readonly scope: string;
  readonly prefix: string;
}

/** Rules matched by exact name first, then globs in file order. */
export interface RuleSet {
  readonly exact: ReadonlyMap<string, ToolRule>;
  readonly globs: readonly ToolRule[];
}

/** The part of an MCP message a policy decides on: parsed once by the MCP layer, which owns its shape. */
export type { CompletionRef, PolicyRequest } from '../mcp/message.js';

/**
 * Why a decision was made: a closed set shared by logs, metrics and tests.
 */
export type DecisionReason =
  | 'route-scopes-missing'
  | 'method-allowed'
  | 'tool-allowed'
  | 'tool-scopes-missing'
  | 'tool-denied'
  | 'tool-unmatched'
  | 'resource-allowed'
  | 'resource-scopes-missing'
  | 'resource-denied'
  | 'resource-unmatched'
  /** The resource URI is not in the one form the policy can decide on (src/mcp/resource-uri.ts). */
  | 'resource-uri-invalid'
  | 'prompt-allowed'
  | 'prompt-scopes-missing'
  | 'prompt-denied'
  | 'prompt-unmatched'
  | 'method-scopes-missing'
  | 'method-denied'
  | 'method-unknown'
  | 'condition-unmet'
  | 'arguments-not-allowed';

export type Decision =
  | { readonly effect: 'allow'; readonly reason: DecisionReason; readonly rule?: string }
  /** Allowed once the token carries `missing` too: answer with an insufficient_scope challenge. */
  | { readonly effect: 'step-up'; readonly reason: DecisionReason; readonly rule?: string; readonly missing: readonly string[] }
  /** No token can make this call: answer as if the tool did not exist. */
  | { readonly effect: 'deny'; readonly reason: DecisionReason; readonly rule?: string };
