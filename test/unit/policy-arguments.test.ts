import { describe, expect, it } from 'vitest';
import { parseMcpBody } from '../../src/mcp/message.js';
import { decideBody, refusalFor } from '../../src/policy/enforce.js';
import { explainRequest } from '../../src/policy/explain.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { CompiledPolicy } from '../../src/policy/types.js';

/** Constraints on tool arguments: exact values, lists, globs; all must hold, a missing one does not. */
function policy(text: string): CompiledPolicy {
  const result = parsePolicy('p.yaml', text);
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.line}:${p.col} ${p.message}`).join('\n'));
  return result.policy;
}

const POLICY = policy(`tools:
  open_pr:
    scopes: [repo:write]
    arguments:
      repo: { glob: "acme/*" }
      draft: { equals: true }
      base: { oneOf: [main, develop] }
`);

const decide = (args: Record<string, unknown>, scopes = ['repo:write']) =>
  explainRequest(POLICY, new Set(scopes), { kind: 'tool-call', tool: 'open_pr', arguments: args });

describe('argument constraints', () => {
  it('allows a call whose arguments all fit', () => {
    expect(decide({ repo: 'acme/api', draft: true, base: 'main', title: 'free text is not constrained' })).toMatchObject({ decision: 'allow', reason: 'tool-allowed' });
  });

  it('refuses a call with a non-matching, wrongly typed or missing argument', () => {
    for (const args of [
      { repo: 'evil/api', draft: true, base: 'main' },
      { repo: 'acme/../evil/api', draft: true, base: 'main' },
      { repo: 'acme/%2e%2e/evil', draft: true, base: 'main' },
      { repo: 'acme/team/api', draft: true, base: 'main' },
      { repo: 'acme/api', draft: 'true', base: 'main' },
      { repo: 'acme/api', draft: true, base: 'release' },
      { repo: 'acme/api', draft: true },
      { repo: ['acme/api'], draft: true, base: 'main' },
    ]) {
      expect(decide(args)).toEqual({ decision: 'deny', reason: 'arguments-not-allowed', rule: 'tools["open_pr"]' });
    }
  });

  it('checks scopes first: a token without them steps up rather than learn what the arguments may be', () => {
    expect(decide({ repo: 'evil/api' }, [])).toMatchObject({ decision: 'step-up', reason: 'tool-scopes-missing' });
  });

  it('answers a refused call as invalid arguments (-32602), not as an unknown tool', () => {
    const body = parseMcpBody(Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'open_pr', arguments: { repo: 'evil/x', draft: true, base: 'main' } } })), '2025-06-18');
    const granted = new Set(['repo:write']);
    const refusal = refusalFor(POLICY, granted, body, decideBody(POLICY, granted, body));
    expect([refusal?.code, refusal?.shape.rpcCode, refusal?.message]).toEqual(['invalid_tool_call', -32602, 'Invalid arguments for tool open_pr: not allowed by policy']);
  });

  it('refuses arguments outside tools, and a malformed constraint, where written', () => {
    const problems = (text: string) => {
      const result = parsePolicy('p.yaml', text);
      return result.ok ? [] : result.problems.map((p) => `${p.line}:${p.col} ${p.message}`);
    };
    expect(problems('prompts:\n  p:\n    scopes: [a]\n    arguments: { x: { equals: 1 } }\n')).toEqual(['4:16 prompts.p: arguments apply to tools only']);
    expect(problems('tools:\n  t:\n    scopes: [a]\n    arguments: { x: { regex: "^a" } }\n')).toEqual([
      '4:21 tools.t.arguments.x must be {equals: value}, {oneOf: [values]} or {glob: pattern} (a path glob: * and ? within a /-separated segment, ** across segments)',
    ]);
  });
});
