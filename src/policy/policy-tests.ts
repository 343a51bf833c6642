import { readFile } from 'node:fs/promises';
import policyTestSchema from '../../schemas/policy-test.schema.json' with { type: 'json' };
import type { ConfigProblem } from '../config/problems.js';
import { schemaChecker } from '../config/schema-validation.js';
import { YamlSource } from '../config/yaml-source.js';
import { explainRequest, policyRequestOf, tokenFactsOf, type Explanation } from './explain.js';
import type { CompiledPolicy } from './types.js';

/** One case of a policy test file, as written. */
interface PolicyTestCase {
  name: string;
  scopes: string[];
  claims?: Record<string, unknown>;
  subject?: string;
  client?: string;
  tool?: string;
  args?: Record<string, unknown>;
  resource?: string;
  prompt?: string;
  method?: string;
  expect: Explanation['decision'];
  reason?: Explanation['reason'];
  rule?: string;
  stepUp?: string[];
}

export interface PolicyTestResult {
  readonly passed: number;
  /** Each failing case, located at its entry in the test file. */
  readonly failures: readonly ConfigProblem[];
  /** Problems with the test file itself (syntax, schema). */
  readonly problems: readonly ConfigProblem[];
}

const checkSchema = schemaChecker(policyTestSchema);

/** `policies/todo.yaml` → `policies/todo.test.yaml`. */
export function testFileFor(policyFile: string): string {
  return policyFile.replace(/\.ya?ml$/i, '') + '.test.yaml';
}

/** Runs a test file against the compiled policy it sits beside; undefined when there is none. */
export async function runPolicyTestFile(file: string, policy: CompiledPolicy): Promise<PolicyTestResult | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return runPolicyTests(file, text, policy);
}

/** Pure: every case of a test file's text, decided by the policy as the gateway would. */
export function runPolicyTests(file: string, text: string, policy: CompiledPolicy): PolicyTestResult {
  const source = new YamlSource(file, text);
  const problems = source.value === undefined ? source.problems : [...source.problems, ...checkSchema(source)];
  const cases = (source.value as { cases?: PolicyTestCase[] } | undefined)?.cases ?? [];
  cases.forEach((testCase, index) => {
    const targets = [testCase.tool, testCase.resource, testCase.prompt, testCase.method].filter((t) => t !== undefined);
    if (targets.length !== 1) problems.push(source.problemAt(['cases', index], `case '${testCase.name}' needs exactly one of tool, resource, prompt and method`));
  });
  if (problems.length > 0) return { passed: 0, failures: [], problems };

  const failures: ConfigProblem[] = [];
  cases.forEach((testCase, index) => {
    const got = explainRequest(policy, new Set(testCase.scopes), policyRequestOf(testCase), tokenFactsOf(testCase));
    const wrong = mismatch(testCase, got);
    if (wrong) failures.push(source.problemAt(['cases', index], `case '${testCase.name}': ${wrong}`));
  });
  return { passed: cases.length - failures.length, failures, problems: [] };
}

function mismatch(testCase: PolicyTestCase, got: Explanation): string | undefined {
  const said = `${got.decision} (${got.reason}${got.rule ? `, ${got.rule}` : ''})`;
  if (got.decision !== testCase.expect) return `expected ${testCase.expect}, got ${said}`;
  if (testCase.reason !== undefined && got.reason !== testCase.reason) return `expected reason ${testCase.reason}, got ${said}`;
  if (testCase.rule !== undefined && got.rule !== testCase.rule) return `expected rule ${testCase.rule}, got ${said}`;
  if (testCase.stepUp !== undefined && (got.stepUpScopes ?? []).join(' ') !== testCase.stepUp.join(' ')) {
    return `expected step-up scope="${testCase.stepUp.join(' ')}", got scope="${(got.stepUpScopes ?? []).join(' ')}"`;
  }
  return undefined;
}
