import { readFile } from 'node:fs/promises';
import policySchema from '../../schemas/policy.schema.json' with { type: 'json' };
import type { ConfigProblem } from '../config/problems.js';
import { schemaChecker } from '../config/schema-validation.js';
import { YamlSource } from '../config/yaml-source.js';
import { compileGlob, isGlob } from './glob.js';
import { compilePathGlob } from './path-glob.js';
import { pathPatternProblem } from './path-value.js';
import { parseDuration } from '../config/duration.js';
import type { ArgumentConstraint, CompiledPolicy, RateLimitRule, RateLimitSubject, Requirement, RuleCondition, RuleSet, ToolRule } from './types.js';

/** The policy file as written, after schema validation. */
interface PolicyDocument {
  scopes?: string[];
  scopePatterns?: string[];
  rateLimit?: RateLimitDocument;
  tools?: Record<string, RuleDocument>;
  resources?: Record<string, RuleDocument>;
  prompts?: Record<string, RuleDocument>;
  methods?: Record<string, RuleDocument>;
}

type RuleDocument = string[] | 'deny' | ToolDocument;

type ArgumentValue = string | number | boolean | null;
type ArgumentDocument = { equals: ArgumentValue } | { oneOf: ArgumentValue[] } | { glob: string };

/**
 * Linear-time matchers only (globs, equality): a policy cannot be made to backtrack (ReDoS).
 * Argument globs are path globs: an upstream may build a path or URL from the value, so `*`
 * must not cross `/` and dot segments must not walk out of what the glob admits.
 */
function compileArgument(doc: ArgumentDocument): ArgumentConstraint {
  if ('glob' in doc) {
    const matches = compilePathGlob(doc.glob);
    return { describe: `matching path glob ${JSON.stringify(doc.glob)}`, allows: (value) => typeof value === 'string' && matches(value) };
  }
  const accepted = 'equals' in doc ? [doc.equals] : doc.oneOf;
  return { describe: `one of ${accepted.map((v) => JSON.stringify(v)).join(', ')}`, allows: (value) => accepted.some((a) => a === value) };
}

interface ToolDocument {
  scopes?: string[];
  anyOf?: string[][];
  when?: RuleCondition;
  arguments?: Record<string, ArgumentDocument>;
  rateLimit?: RateLimitDocument;
}

interface RateLimitDocument {
  requests: number;
  per: string;
  by?: RateLimitSubject;
}

const checkPolicySchema = schemaChecker(policySchema);

export type PolicyLoadResult =
  | { readonly ok: true; readonly policy: CompiledPolicy }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

export async function loadPolicyFile(file: string): Promise<PolicyLoadResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    return { ok: false, problems: [{ file, line: 1, col: 1, message: `cannot read policy file: ${(error as Error).message}` }] };
  }
  return parsePolicy(file, text);
}

export function parsePolicy(file: string, text: string): PolicyLoadResult {
  const source = new YamlSource(file, text, { misfit: checkPolicySchema.misfit });
  if (source.value === undefined) return { ok: false, problems: source.problems };
  const problems = [...source.problems, ...checkPolicySchema(source)];
  if (problems.length === 0) problems.push(...checkSemantics(source, source.value as PolicyDocument));
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, policy: compilePolicy(file, source.value as PolicyDocument) };
}

export function compilePolicy(file: string, doc: PolicyDocument): CompiledPolicy {
  const routeScopes = doc.scopes ?? [];
  const scopesSupported = [...routeScopes];
  const tools = compileRules('tools', doc.tools ?? {}, scopesSupported);
  const resources = doc.resources ? compileRules('resources', doc.resources, scopesSupported) : undefined;
  const prompts = doc.prompts ? compileRules('prompts', doc.prompts, scopesSupported) : undefined;
  const methods = new Map(Object.entries(doc.methods ?? {}).map(([name, value]) => [name, compileRule('methods', name, value, scopesSupported, false)]));
  const rules = [...tools.exact.values(), ...tools.globs];
  const showsEveryTool = rules.every((rule) => rule.requirement.kind !== 'deny') && tools.globs.some((rule) => /^\*+$/.test(rule.pattern));
  const routeRateLimit = doc.rateLimit ? compileRateLimit('rateLimit', doc.rateLimit) : undefined;
  // A client may ask the IdP for the pattern itself, so it is a supported scope too (RFC 9728 §2).
  const scopePatterns = (doc.scopePatterns ?? []).map((scope) => ({ scope, prefix: scope.slice(0, -1) }));
  for (const { scope } of scopePatterns) if (!scopesSupported.includes(scope)) scopesSupported.push(scope);
  return {
    file,
    routeScopes,
    ...(routeRateLimit ? { routeRateLimit } : {}),
    exactTools: tools.exact,
    globTools: tools.globs,
    scopesSupported,
    showsEveryTool,
    ...(resources ? { resources } : {}),
    ...(prompts ? { prompts } : {}),
    methods,
    scopePatterns,
  };
}

/** One section of name (or glob) → requirement rules; every scope named joins scopesSupported. */
function compileRules(section: string, entries: Record<string, RuleDocument>, scopesSupported: string[]): RuleSet {
  const exact = new Map<string, ToolRule>();
  const globs: ToolRule[] = [];
  for (const [pattern, value] of Object.entries(entries)) {
    const glob = isGlob(pattern);
    const rule = compileRule(section, pattern, value, scopesSupported, glob);
    if (glob) globs.push(rule);
    else exact.set(pattern, rule);
  }
  return { exact, globs };
}

function compileRule(section: string, pattern: string, value: RuleDocument, scopesSupported: string[], glob: boolean): ToolRule {
  const entry: ToolDocument | 'deny' = Array.isArray(value) ? { scopes: value } : value;
  const id = `${section}[${JSON.stringify(pattern)}]`;
  const requirement: Requirement =
    entry === 'deny' ? { kind: 'deny' } : entry.anyOf ? { kind: 'anyOf', alternatives: entry.anyOf } : { kind: 'scopes', scopes: entry.scopes ?? [] };
  const named = requirement.kind === 'scopes' ? requirement.scopes : requirement.kind === 'anyOf' ? requirement.alternatives.flat() : [];
  for (const scope of named) if (!scopesSupported.includes(scope)) scopesSupported.push(scope);
  const rateLimit = entry !== 'deny' && entry.rateLimit ? compileRateLimit(`${id}.rateLimit`, entry.rateLimit) : undefined;
  return {
    id,
    pattern,
    requirement,
    matches: glob ? compileGlob(pattern) : (name) => name === pattern,
    ...(rateLimit ? { rateLimit } : {}),
    ...(entry !== 'deny' && entry.when ? { when: entry.when } : {}),
    ...(entry !== 'deny' && entry.arguments
      ? { arguments: new Map(Object.entries(entry.arguments).map(([name, constraint]) => [name, compileArgument(constraint)])) }
      : {}),
  };
}

function compileRateLimit(id: string, doc: RateLimitDocument): RateLimitRule {
  return { id, requests: doc.requests, periodMs: parseDuration(doc.per), by: doc.by ?? 'subject' };
}

/**
 * What the schema cannot say: budgets the limiter cannot count (a zero period, more than one
 * request per µs), a tool giving both scopes and anyOf, and an argument glob no safe value could
 * match (a dot segment, a backslash), refused where written.
 */
function checkSemantics(source: YamlSource, doc: PolicyDocument): ConfigProblem[] {
  const limits: [(string | number)[], RateLimitDocument][] = [];
  if (doc.rateLimit) limits.push([['rateLimit'], doc.rateLimit]);
  const problems: ConfigProblem[] = [];
  for (const section of ['tools', 'resources', 'prompts', 'methods'] as const) {
    for (const [pattern, value] of Object.entries(doc[section] ?? {})) {
      if (typeof value !== 'object' || Array.isArray(value)) continue;
      if (value.rateLimit) limits.push([[section, pattern, 'rateLimit'], value.rateLimit]);
      if (value.arguments !== undefined && section !== 'tools') {
        problems.push(source.problemAt([section, pattern, 'arguments'], `${section}.${pattern}: arguments apply to tools only`));
      }
      for (const [name, constraint] of Object.entries(value.arguments ?? {})) {
        const problem = 'glob' in constraint ? pathPatternProblem(constraint.glob) : undefined;
        if (problem) problems.push(source.problemAt([section, pattern, 'arguments', name, 'glob'], `${section}.${pattern}.arguments.${name}.glob ${problem}`));
      }
      if (value.scopes !== undefined && value.anyOf !== undefined) {
        problems.push(source.problemAt([section, pattern, 'anyOf'], `${section}.${pattern}: give scopes or anyOf, not both`));
      }
    }
  }
  return problems.concat(limits.flatMap(([path, limit]) => {
    const periodMs = parseDuration(limit.per);
    if (periodMs === 0) return [source.problemAt([...path, 'per'], `${path.join('.')}.per must be longer than 0`)];
    // The limiter counts in whole microseconds: a finer rate would round to no limit at all.
    if (periodMs * 1000 < limit.requests) {
      return [source.problemAt([...path, 'requests'], `${path.join('.')}.requests is more than one per microsecond; use a longer per`)];
    }
    return [];
  }));
}
