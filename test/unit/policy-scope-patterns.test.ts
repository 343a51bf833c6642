import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideRequest, heldScopes } from '../../src/policy/evaluate.js';
import { explainRequest } from '../../src/policy/explain.js';
import { compilePolicy, parsePolicy } from '../../src/policy/load.js';
import type { CompiledPolicy } from '../../src/policy/types.js';

/** `scopePatterns`: a wildcard scope the policy honours grants a family of tools. */
const POLICY = `scopes: [mcp]
scopePatterns: ["mcp:exec:workflows:*", "mcp:exec:*"]
tools:
  workflow_deploy: [mcp:exec:workflows:deploy]
  workflow_run: [mcp:exec:workflows:run]
  shell: [mcp:exec:shell]
  billing: [billing:write]
`;

function policy(text = POLICY): CompiledPolicy {
  const result = parsePolicy('p.yaml', text);
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.line}:${p.col} ${p.message}`).join('\n'));
  return result.policy;
}

const call = (scopes: string[], tool: string) => explainRequest(policy(), new Set(scopes), { kind: 'tool-call', tool });

describe('scope patterns', () => {
  it('grants every tool of the family to a token carrying the pattern', () => {
    expect(call(['mcp', 'mcp:exec:workflows:*'], 'workflow_deploy')).toMatchObject({ decision: 'allow', reason: 'tool-allowed' });
    expect(call(['mcp', 'mcp:exec:workflows:*'], 'workflow_run')).toMatchObject({ decision: 'allow' });
  });

  it('grants nothing outside the family', () => {
    expect(call(['mcp', 'mcp:exec:workflows:*'], 'shell')).toMatchObject({ decision: 'step-up', reason: 'tool-scopes-missing' });
    expect(call(['mcp', 'mcp:exec:workflows:*'], 'billing')).toMatchObject({ decision: 'step-up' });
  });

  it('lets a wider pattern cover the narrower one and its family', () => {
    const held = heldScopes(policy(), new Set(['mcp:exec:*']));
    expect([...held].sort()).toEqual(['mcp:exec:*', 'mcp:exec:shell', 'mcp:exec:workflows:*', 'mcp:exec:workflows:deploy', 'mcp:exec:workflows:run']);
    expect(call(['mcp', 'mcp:exec:*'], 'shell')).toMatchObject({ decision: 'allow' });
  });

  it('treats a wildcard the policy does not list as a plain string', () => {
    expect(call(['mcp', 'mcp:*'], 'workflow_deploy')).toMatchObject({ decision: 'step-up' });
    expect(call(['mcp', 'mcp:exec:workflows*'], 'workflow_deploy')).toMatchObject({ decision: 'step-up' });
    // Held scopes are matched as the policy wrote them, case and all.
    expect(call(['mcp', 'MCP:EXEC:WORKFLOWS:*'], 'workflow_deploy')).toMatchObject({ decision: 'step-up' });
  });

  it('does not expand the token at all when no pattern is held, nor for a policy without patterns', () => {
    const scopes = new Set(['mcp', 'mcp:exec:workflows:deploy']);
    expect(heldScopes(policy(), scopes)).toBe(scopes);
    expect(heldScopes(policy('tools: { x: [a] }'), new Set(['a*']))).toEqual(new Set(['a*']));
  });

  it('can satisfy the route scopes too', () => {
    const p = policy(`scopes: [todo:read]\nscopePatterns: ["todo:*"]\ntools: { list: [] }\n`);
    expect(decideRequest(p, new Set(['todo:*']), { kind: 'tool-call', tool: 'list' })).toMatchObject({ effect: 'allow' });
  });

  it('asks a step-up for the held pattern as itself, not for what it expands to', () => {
    expect(call(['mcp', 'mcp:exec:workflows:*'], 'billing').stepUpScopes).toEqual(['mcp', 'mcp:exec:workflows:*', 'billing:write']);
  });

  it('lists the patterns in scopes_supported, after the scopes the rules name', () => {
    expect(policy().scopesSupported).toEqual([
      'mcp', 'mcp:exec:workflows:deploy', 'mcp:exec:workflows:run', 'mcp:exec:shell', 'billing:write', 'mcp:exec:workflows:*', 'mcp:exec:*',
    ]);
  });

  it('refuses a pattern without a trailing * right after a separator, or with * elsewhere, where it is written', () => {
    for (const bad of ['"mcp:exec"', '"*"', '"mcp:*:run*"', '"a b*"', '"mcp:exec:work*"', '":*x"']) {
      const result = parsePolicy('p.yaml', `scopePatterns: [${bad}]\n`);
      expect(result.ok, bad).toBe(false);
      if (!result.ok) expect(result.problems[0]).toMatchObject({ file: 'p.yaml', line: 1 });
    }
  });
});

describe('scope patterns, as a property', () => {
  const SCOPES = ['w:a', 'w:b', 'w:a:x', 'wa', 'v:a', 'w:'];
  const PATTERNS = ['w:*', 'w:a:*', 'w*', 'v:*'];

  it('a token holding listed patterns decides exactly as one holding every scope they cover', () => {
    fc.assert(
      fc.property(
        fc.subarray(PATTERNS),
        fc.dictionary(fc.constantFrom('t1', 't2', 't3'), fc.subarray(SCOPES, { minLength: 1, maxLength: 2 }), { maxKeys: 3 }),
        fc.subarray([...SCOPES, ...PATTERNS]),
        fc.constantFrom('t1', 't2', 't3'),
        (listed, tools, tokenScopes, tool) => {
          const p = compilePolicy('p.yaml', { scopePatterns: listed, tools });
          // Independent reading: a held, listed pattern covers every longer scope with its prefix.
          const expanded = new Set(tokenScopes);
          for (const pattern of listed) {
            if (!tokenScopes.includes(pattern)) continue;
            const prefix = pattern.slice(0, -1);
            for (const scope of [...SCOPES, ...PATTERNS]) if (scope.startsWith(prefix) && scope !== prefix) expanded.add(scope);
          }
          const need = tools[tool];
          const expected = need !== undefined && need.every((scope) => expanded.has(scope));
          expect(decideRequest(p, new Set(tokenScopes), { kind: 'tool-call', tool }).effect === 'allow').toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});
