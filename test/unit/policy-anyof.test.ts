import { describe, expect, it } from 'vitest';
import { explainRequest } from '../../src/policy/explain.js';
import { isToolVisible } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { CompiledPolicy } from '../../src/policy/types.js';

/** Alternative scope sets: any one held in full admits the call; a step-up asks for the cheapest. */
const POLICY = `scopes: [mcp]
tools:
  deploy:
    anyOf: [[deploy:write], [ci:agent, deploy:request]]
    rateLimit: { requests: 5, per: 1m }
  "*": [mcp]
`;

function policy(text = POLICY): CompiledPolicy {
  const result = parsePolicy('p.yaml', text);
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.line}:${p.col} ${p.message}`).join('\n'));
  return result.policy;
}

const explain = (scopes: string[]) => explainRequest(policy(), new Set(['mcp', ...scopes]), { kind: 'tool-call', tool: 'deploy' });

describe('anyOf scope sets', () => {
  it('admits a token holding any one alternative in full', () => {
    expect(explain(['deploy:write'])).toEqual({ decision: 'allow', reason: 'tool-allowed', rule: 'tools["deploy"]' });
    expect(explain(['ci:agent', 'deploy:request'])).toMatchObject({ decision: 'allow' });
  });

  it('steps up for the alternative needing the fewest new scopes, keeping what is held', () => {
    expect(explain(['ci:agent'])).toEqual({
      decision: 'step-up',
      reason: 'tool-scopes-missing',
      rule: 'tools["deploy"]',
      stepUpScopes: ['mcp', 'ci:agent', 'deploy:request'],
    });
    // A tie goes to the first alternative.
    expect(explain([]).stepUpScopes).toEqual(['mcp', 'deploy:write']);
  });

  it('keeps the tool visible, lists every scope it names, and still lets a catch-all skip filtering', () => {
    const compiled = policy();
    expect(isToolVisible(compiled, 'deploy')).toBe(true);
    expect(compiled.scopesSupported).toEqual(['mcp', 'deploy:write', 'ci:agent', 'deploy:request']);
    expect(compiled.showsEveryTool).toBe(true);
    expect(compiled.exactTools.get('deploy')?.rateLimit).toMatchObject({ requests: 5 });
  });

  it('refuses scopes and anyOf together, and an empty alternative list, where they are written', () => {
    const problems = (text: string) => {
      const result = parsePolicy('p.yaml', text);
      return result.ok ? [] : result.problems.map((p) => `${p.line}:${p.col} ${p.message}`);
    };
    expect(problems('tools:\n  deploy:\n    scopes: [a]\n    anyOf: [[b]]\n')).toEqual(['4:12 tools.deploy: give scopes or anyOf, not both']);
    expect(problems('tools:\n  deploy:\n    anyOf: []\n')).toEqual(['3:12 tools.deploy.anyOf must NOT have fewer than 1 items']);
  });
});
