import { readFile } from 'node:fs/promises';
import policySchema from '../../schemas/policy.schema.json' with { type: 'json' };
import type { ConfigProblem } from '../config/problems.js';
import { schemaChecker } from '../config/schema-validation.js';
import { YamlSource } from '../config/yaml-source.js';
import { compileGlob, isGlob } from './glob.js';
import type { CompiledPolicy, Requirement, ToolRule } from './types.js';

/** The policy file as written, after schema validation. */
interface PolicyDocument {
  scopes?: string[];
  tools?: Record<string, string[] | 'deny'>;
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
  const source = new YamlSource(file, text);
  if (source.value === undefined) return { ok: false, problems: source.problems };
  const problems = [...source.problems, ...checkPolicySchema(source)];
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, policy: compilePolicy(file, source.value as PolicyDocument) };
}

export function compilePolicy(file: string, doc: PolicyDocument): CompiledPolicy {
  const routeScopes = doc.scopes ?? [];
  const exactTools = new Map<string, ToolRule>();
  const globTools: ToolRule[] = [];
  const scopesSupported = [...routeScopes];
  for (const [pattern, value] of Object.entries(doc.tools ?? {})) {
    const requirement: Requirement = value === 'deny' ? { kind: 'deny' } : { kind: 'scopes', scopes: value };
    if (requirement.kind === 'scopes') {
      for (const scope of requirement.scopes) if (!scopesSupported.includes(scope)) scopesSupported.push(scope);
    }
    const glob = isGlob(pattern);
    const rule: ToolRule = {
      id: `tools[${JSON.stringify(pattern)}]`,
      pattern,
      requirement,
      matches: glob ? compileGlob(pattern) : (name) => name === pattern,
    };
    if (glob) globTools.push(rule);
    else exactTools.set(pattern, rule);
  }
  const rules = [...exactTools.values(), ...globTools];
  const showsEveryTool =
    rules.every((rule) => rule.requirement.kind === 'scopes') && globTools.some((rule) => /^\*+$/.test(rule.pattern));
  return { file, routeScopes, exactTools, globTools, scopesSupported, showsEveryTool };
}
