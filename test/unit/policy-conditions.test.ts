import { describe, expect, it } from 'vitest';
import { parseMcpBody } from '../../src/mcp/message.js';
import { decideBody, refusalFor } from '../../src/policy/enforce.js';
import { decideRequest } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { CompiledPolicy, TokenFacts } from '../../src/policy/types.js';

/** Conditions on who the token is: claims (groups, tenant), subjects and clients (agent identities). */
function policy(text: string): CompiledPolicy {
  const result = parsePolicy('p.yaml', text);
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.line}:${p.col} ${p.message}`).join('\n'));
  return result.policy;
}

const POLICY = policy(`scopes: [mcp]
tools:
  deploy:
    scopes: [deploy]
    when: { claims: { groups: [release-managers, sre], tid: acme } }
  rotate_keys:
    scopes: [mcp]
    when: { subjects: [alice] }
  triage:
    scopes: [mcp]
    when: { clients: [triage-agent] }
resources:
  "hr://*":
    scopes: [mcp]
    when: { claims: { realm_access.roles: hr } }
`);

const decide = (tool: string, facts: TokenFacts, scopes = ['mcp', 'deploy']) => {
  const { effect, reason } = decideRequest(POLICY, new Set(scopes), { kind: 'tool-call', tool }, facts);
  return `${effect} ${reason}`;
};

describe('rule conditions', () => {
  it('claims: every listed claim must hold one of its values (array claims: any element)', () => {
    expect(decide('deploy', { claims: { groups: ['devs', 'sre'], tid: 'acme' } })).toBe('allow tool-allowed');
    expect(decide('deploy', { claims: { groups: ['devs'], tid: 'acme' } })).toBe('deny condition-unmet');
    expect(decide('deploy', { claims: { groups: ['sre'], tid: 'other' } })).toBe('deny condition-unmet');
    expect(decide('deploy', { claims: {} })).toBe('deny condition-unmet');
  });

  it('a condition is checked before scopes: no step-up can change who the token is', () => {
    expect(decide('deploy', { claims: { groups: ['devs'], tid: 'acme' } }, ['mcp'])).toBe('deny condition-unmet');
    expect(decide('deploy', { claims: { groups: ['sre'], tid: 'acme' } }, ['mcp'])).toBe('step-up tool-scopes-missing');
  });

  it('subjects and clients: the mapped subject or client must be listed', () => {
    expect(decide('rotate_keys', { claims: {}, subject: 'alice' })).toBe('allow tool-allowed');
    expect(decide('rotate_keys', { claims: {}, subject: 'bob' })).toBe('deny condition-unmet');
    expect(decide('triage', { claims: {}, subject: 'bob', clientId: 'triage-agent' })).toBe('allow tool-allowed');
    expect(decide('triage', { claims: {}, clientId: 'other-agent' })).toBe('deny condition-unmet');
  });

  it('works on resources too, with nested claim paths', () => {
    const read = (facts: TokenFacts) => decideRequest(POLICY, new Set(['mcp']), { kind: 'resource', method: 'resources/read', uri: 'hr://salaries' }, facts).reason;
    expect(read({ claims: { realm_access: { roles: ['hr', 'user'] } } })).toBe('resource-allowed');
    expect(read({ claims: { realm_access: { roles: ['user'] } } })).toBe('condition-unmet');
  });

  it('a call refused by a condition is answered as an unknown tool', () => {
    const body = parseMcpBody(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rotate_keys"}}'), '2025-06-18');
    const facts = { claims: {}, subject: 'mallory' };
    const refusal = refusalFor(POLICY, new Set(['mcp']), body, decideBody(POLICY, new Set(['mcp']), body, facts));
    expect([refusal?.code, refusal?.message]).toEqual(['tool_denied', 'Unknown tool: rotate_keys']);
  });

  it('refuses an empty or misspelt condition where it is written', () => {
    const problems = (text: string) => {
      const result = parsePolicy('p.yaml', text);
      return result.ok ? [] : result.problems.map((p) => `${p.line}:${p.col} ${p.message}`);
    };
    expect(problems('tools:\n  x:\n    scopes: [a]\n    when: {}\n')).toEqual(['4:11 tools.x.when must NOT have fewer than 1 properties']);
    expect(problems('tools:\n  x:\n    scopes: [a]\n    when: { subject: [alice] }\n')).toEqual(["4:13 unknown key 'subject' in tools.x.when (did you mean 'subjects'?)"]);
  });
});
