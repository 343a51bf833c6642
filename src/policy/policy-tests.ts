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
  /** How many cases failed: decided otherwise than expected, or written wrongly. */
  readonly failed: number;
  /**
   * Why, in case order: a wrongly decided case at its entry, a wrongly written one at each of its
   * mistakes (several lines for one case), each naming the case.
   */
  readonly failures: readonly ConfigProblem[];
  /** Problems with the test file outside any case (syntax, a key beside `cases`). */
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

/**
 * Pure: every case of a test file's text, decided by the policy as the gateway would. A case
 * written wrongly fails alone, named, and the others still run; only a file that does not parse
 * as YAML runs none.
 */
export function runPolicyTests(file: string, text: string, policy: CompiledPolicy): PolicyTestResult {
  const source = new YamlSource(file, text, { misfit: checkSchema.misfit });
  if (source.value === undefined || source.problems.length > 0) return { passed: 0, failed: 0, failures: [], problems: source.problems };
  const listed = (source.value as { cases?: unknown }).cases;
  const cases: unknown[] = Array.isArray(listed) ? listed : [];
  const caseName = (index: number) => {
    const name = (cases[index] as { name?: unknown } | null | undefined)?.name;
    return typeof name === 'string' && name !== '' ? `case '${name}'` : `case ${index + 1}`;
  };

  const problems: ConfigProblem[] = [];
  const written = new Map<number, ConfigProblem[]>();
  const ofCase = (index: number) => written.get(index) ?? written.set(index, []).get(index)!;
  for (const problem of checkSchema(source, (path) => placeIn(path, caseName))) {
    const [section, index] = problem.path;
    if (section === 'cases' && typeof index === 'number') ofCase(index).push(problem);
    else problems.push(problem);
  }
  cases.forEach((testCase, index) => {
    if (written.has(index)) return;
    const { tool, resource, prompt, method } = testCase as PolicyTestCase;
    if ([tool, resource, prompt, method].filter((t) => t !== undefined).length !== 1) {
      ofCase(index).push(source.problemAt(['cases', index], `${caseName(index)} needs exactly one of tool, resource, prompt and method`));
    }
  });

  const failures: ConfigProblem[] = [];
  let failed = 0;
  cases.forEach((testCase, index) => {
    const mistakes = written.get(index);
    if (mistakes) {
      failed += 1;
      failures.push(...mistakes.sort((a, b) => a.line - b.line || a.col - b.col));
      return;
    }
    const wrong = mismatch(testCase as PolicyTestCase, decide(policy, testCase as PolicyTestCase));
    if (wrong) {
      failed += 1;
      failures.push(source.problemAt(['cases', index], `${caseName(index)}: ${wrong}`));
    }
  });
  return { passed: cases.length - failed, failed, failures, problems };
}

function decide(policy: CompiledPolicy, testCase: PolicyTestCase): Explanation {
  return explainRequest(policy, new Set(testCase.scopes), policyRequestOf(testCase), tokenFactsOf(testCase));
}

/** `cases.3.expect` is called `case 'its name': expect` in messages. */
function placeIn(path: readonly (string | number)[], caseName: (index: number) => string): string {
  const [section, index, ...rest] = path;
  if (section !== 'cases' || typeof index !== 'number') return path.length === 0 ? 'top level' : path.join('.');
  return rest.length === 0 ? caseName(index) : `${caseName(index)}: ${rest.join('.')}`;
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
