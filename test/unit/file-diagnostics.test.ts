/**
 * What a person sees when a policy, config or policy test file is written wrongly: a typo in a
 * rule's key is named with the key meant, one stray indent is one problem at its line (not one
 * for every line after it), and a wrongly written test case fails as that case while the others
 * still run.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError, type ConfigProblem } from '../../src/config/problems.js';
import { parsePolicy } from '../../src/policy/load.js';
import { runPolicyTests } from '../../src/policy/policy-tests.js';
import type { CompiledPolicy } from '../../src/policy/types.js';

const EXAMPLE_POLICY = readFileSync('policies/todo.yaml', 'utf8');

function problemsOf(text: string): string[] {
  const result = parsePolicy('policy.yaml', text);
  return result.ok ? [] : result.problems.map((p) => `${p.line}:${p.col} ${p.message}`);
}

function compiled(text: string): CompiledPolicy {
  const result = parsePolicy('policy.yaml', text);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.policy;
}

/** Each content line of `text`, with its 1-based number: what a mistake can be made on. */
function contentLines(text: string): { number: number; line: string }[] {
  return text
    .split('\n')
    .map((line, i) => ({ number: i + 1, line }))
    .filter(({ line }) => line.trim() !== '' && !line.trim().startsWith('#'));
}

function shifted(text: string, number: number, by: number): string {
  const lines = text.split('\n');
  lines[number - 1] = by > 0 ? ' '.repeat(by) + lines[number - 1] : lines[number - 1]!.slice(-by);
  return lines.join('\n');
}

describe('a typo in a rule key', () => {
  it.each([
    ['tools:\n  add_todo:\n    scope: [todo:write]\n', "3:5 unknown key 'scope' in tools.add_todo (did you mean 'scopes'?)"],
    ['tools:\n  delete_todo:\n    anyof: [[todo:write]]\n', "3:5 unknown key 'anyof' in tools.delete_todo (did you mean 'anyOf'?)"],
    ['tools:\n  t: { scopes: [a], ratelimit: { requests: 3, per: 1m } }\n', "2:21 unknown key 'ratelimit' in tools.t (did you mean 'rateLimit'?)"],
    ['tools:\n  t: { scopes: [a], when: { claim: { groups: [ops] } } }\n', "2:29 unknown key 'claim' in tools.t.when (did you mean 'claims'?)"],
    ['resources:\n  "todo://*": { scope: [todo:read] }\n', "2:17 unknown key 'scope' in resources.todo://* (did you mean 'scopes'?)"],
    ['prompts:\n  summarize: { scpoes: [todo:read] }\n', "2:16 unknown key 'scpoes' in prompts.summarize (did you mean 'scopes'?)"],
    ['methods:\n  todo/reindex: { scope: [todo:admin] }\n', "2:19 unknown key 'scope' in methods.todo/reindex (did you mean 'scopes'?)"],
  ])('%j is named with the key meant', (text, problem) => {
    expect(problemsOf(text)).toEqual([problem]);
  });

  it('is refused with the forms a rule takes when no key is close', () => {
    expect(problemsOf('tools:\n  t: { deny: true }\n')).toEqual([
      "2:8 unknown key 'deny' in tools.t (it must be a list of scopes, deny, or {scopes | anyOf, when, arguments, rateLimit})",
    ]);
    // A value of no rule's type is still described as a whole (the positive control of the above).
    expect(problemsOf('tools:\n  t: allow\n')).toEqual(['2:6 tools.t must be a list of scopes, deny, or {scopes | anyOf, when, arguments, rateLimit}']);
  });

  it('names the key for any one-letter slip of a long-form key (case, a dropped or a doubled letter, a swap)', () => {
    const keys = ['scopes', 'anyOf', 'rateLimit', 'arguments'];
    const slip = fc.tuple(fc.constantFrom(...keys), fc.nat(), fc.constantFrom('case', 'drop', 'double', 'swap')).map(([key, at, kind]) => {
      const i = at % key.length;
      const typo =
        kind === 'case' ? key.slice(0, i) + (key[i] === key[i]!.toUpperCase() ? key[i]!.toLowerCase() : key[i]!.toUpperCase()) + key.slice(i + 1)
        : kind === 'drop' ? key.slice(0, i) + key.slice(i + 1)
        : kind === 'double' ? key.slice(0, i) + key[i] + key.slice(i)
        : key.slice(0, i) + (key[i + 1] ?? '') + key[i] + key.slice(i + 2);
      return { key, typo };
    });
    fc.assert(
      fc.property(slip.filter(({ key, typo }) => typo !== key), ({ key, typo }) => {
        const problems = problemsOf(`tools:\n  t:\n    ${typo}: x\n`);
        expect(problems).toHaveLength(1);
        expect(problems[0]).toContain(`unknown key '${typo}' in tools.t (did you mean '${key}'?)`);
      }),
    );
  });
});

describe('one stray indent', () => {
  it('in the example policy is one problem, at its line, whichever line it is and whichever way it strays by a space', () => {
    let tried = 0;
    for (const { number, line } of contentLines(EXAMPLE_POLICY)) {
      for (const by of [1, -1]) {
        if (by < 0 && !line.startsWith(' ')) continue;
        const problems = problemsOf(shifted(EXAMPLE_POLICY, number, by));
        // A lone child's indentation means nothing to YAML: the same policy, no problem.
        if (problems.length === 0) {
          expect(compiled(shifted(EXAMPLE_POLICY, number, by)).scopesSupported).toEqual(compiled(EXAMPLE_POLICY).scopesSupported);
          continue;
        }
        tried += 1;
        expect(problems, `line ${number} moved by ${by}: ${line}`).toHaveLength(1);
        expect(problems[0]!.startsWith(`${number}:`), `line ${number} moved by ${by}: ${problems[0]}`).toBe(true);
      }
    }
    expect(tried).toBeGreaterThan(40);
  });

  it('says where, what the siblings have, and still finds the other problems of the file', () => {
    const text = 'scopes: [todo:read]\ntools:\n  list_todos: [todo:read]\n   add_todo: [todo:write]\n  delete_todo: [todo:write]\n  slow: { scope: [x] }\n';
    expect(problemsOf(text)).toEqual([
      "4:4 'add_todo' is indented by 3 spaces, its siblings by 2 (in YAML the items of a block start in one column); the rest of the file was read as if it were 2",
      "6:11 unknown key 'scope' in tools.slow (did you mean 'scopes'?)",
    ]);
  });

  it('is a real cascade for the parser (what the above collapses)', () => {
    // Without the realignment the parser and the schema each blame every sibling after the
    // stray line; this pins down that the example is a real cascade.
    const text = shifted(EXAMPLE_POLICY, EXAMPLE_POLICY.split('\n').indexOf('  add_todo:') + 1, -1);
    expect(parseDocument(text).errors.length).toBeGreaterThan(3);
    expect(problemsOf(text)).toHaveLength(1);
  });

  it('in a config is one problem at its line too', async () => {
    const example = readFileSync('gateway.example.yaml', 'utf8');
    const number = example.split('\n').indexOf('    upstream: http://127.0.0.1:9500/mcp     # the MCP server behind the gateway (no auth)') + 1;
    expect(number).toBeGreaterThan(0);
    const error = await parseConfig(resolve('gateway.example.yaml'), shifted(example, number, -1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems.map((p: ConfigProblem) => [p.line, p.col])).toEqual([[number, 4]]);
    expect(problems[0]!.message).toContain("'upstream' is indented by 3 spaces, its siblings by 4");
  });
});

describe('a policy test file with a mistake in a case', () => {
  const policy = compiled(EXAMPLE_POLICY);

  it('fails that case, at each mistake, named, and runs the others', () => {
    const text = [
      'cases:',
      '  - { name: readers list, scopes: [todo:read], tool: list_todos, expect: allow }',
      '  - name: a typo',
      '    scopes: [todo:read]',
      '    tool: list_todos',
      '    expcet: allow',
      '  - { name: wrong expectation, scopes: [todo:read], tool: add_todo, expect: allow }',
      '  - { name: bad value, scopes: [todo:read], tool: list_todos, expect: maybe }',
      '  - { name: two targets, scopes: [todo:read], tool: list_todos, method: tools/list, expect: allow }',
      '',
    ].join('\n');
    const result = runPolicyTests('t.yaml', text, policy);
    expect(result.problems).toEqual([]);
    expect([result.passed, result.failed]).toEqual([1, 4]);
    expect(result.failures.map((f) => `${f.line}:${f.col} ${f.message}`)).toEqual([
      "3:5 case 'a typo': missing required key 'expect'",
      "6:5 unknown key 'expcet' in case 'a typo' (did you mean 'expect'?)",
      "7:5 case 'wrong expectation': expected allow, got step-up (tool-scopes-missing, tools[\"add_todo\"])",
      `8:71 case 'bad value': expect must be one of "allow", "deny", "step-up"`,
      "9:5 case 'two targets' needs exactly one of tool, resource, prompt and method",
    ]);
  });

  it('names a case without a name by its number, and keeps mistakes outside the cases apart', () => {
    const result = runPolicyTests('t.yaml', 'cases:\n  - { scopes: [todo:read], tool: list_todos, expect: allow }\nextra: 1\n', policy);
    expect(result.failures.map((f) => f.message)).toEqual(["case 1: missing required key 'name'"]);
    expect(result.problems.map((p) => p.message)).toEqual(["unknown key 'extra' in top level"]);
    expect([result.passed, result.failed]).toEqual([0, 1]);
  });

  it('runs no case when the file is not YAML it can read', () => {
    const result = runPolicyTests('t.yaml', 'cases:\n  - { name: a, scopes: [todo:read], tool: list_todos, expect: allow\n', policy);
    expect(result.problems.length).toBeGreaterThan(0);
    expect([result.passed, result.failed]).toEqual([0, 0]);
  });
});
