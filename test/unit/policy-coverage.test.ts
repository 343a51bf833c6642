import { describe, expect, it } from 'vitest';
import { ListFilter } from '../../src/mcp/list-filter.js';
import { parseMcpBody } from '../../src/mcp/message.js';
import { decideBody, refusalFor } from '../../src/policy/enforce.js';
import { decideRequest, isPromptVisible, isResourceTemplateVisible, isResourceVisible } from '../../src/policy/evaluate.js';
import { parsePolicy } from '../../src/policy/load.js';
import { rateLimitCharges } from '../../src/policy/rate-limits.js';
import type { CompiledPolicy, PolicyRequest } from '../../src/policy/types.js';

/** Resources, prompts and methods in policies: decisions, refusals, list filtering, budgets. */
function policy(text: string): CompiledPolicy {
  const result = parsePolicy('p.yaml', text);
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.line}:${p.col} ${p.message}`).join('\n'));
  return result.policy;
}

const FULL = policy(`scopes: [r]
resources:
  "todo://*": [r]
  "secret://*": deny
  "admin://*":
    scopes: [admin]
    rateLimit: { requests: 2, per: 1m }
prompts:
  summarize: [r]
  "internal_*": deny
methods:
  completion/complete: [complete]
  logging/setLevel: deny
  vendor/export: [admin]
`);
const BARE = policy('scopes: [r]\ntools:\n  "*": [r]\n');

const decide = (p: CompiledPolicy, scopes: string[], request: PolicyRequest) => {
  const { effect, reason } = decideRequest(p, new Set(scopes), request);
  return `${effect} ${reason}`;
};

describe('policies over all of MCP', () => {
  it('decides resources by URI glob: allowed, step-up, denied, unmatched', () => {
    const read = (uri: string) => ({ kind: 'resource', method: 'resources/read', uri }) as const;
    expect(decide(FULL, ['r'], read('todo://list'))).toBe('allow resource-allowed');
    expect(decide(FULL, ['r'], read('admin://users'))).toBe('step-up resource-scopes-missing');
    expect(decide(FULL, ['r', 'admin'], read('secret://keys'))).toBe('deny resource-denied');
    expect(decide(FULL, ['r', 'admin'], read('file:///etc/passwd'))).toBe('deny resource-unmatched');
  });

  it('decides prompts by name, and methods by their own rules with a safe default', () => {
    expect(decide(FULL, ['r'], { kind: 'prompt', name: 'summarize' })).toBe('allow prompt-allowed');
    expect(decide(FULL, ['r'], { kind: 'prompt', name: 'internal_triage' })).toBe('deny prompt-denied');
    expect(decide(FULL, ['r'], { kind: 'prompt', name: 'other' })).toBe('deny prompt-unmatched');
    expect(decide(FULL, ['r'], { kind: 'other', method: 'completion/complete' })).toBe('step-up method-scopes-missing');
    expect(decide(FULL, ['r', 'complete'], { kind: 'other', method: 'completion/complete' })).toBe('allow method-allowed');
    expect(decide(FULL, ['r', 'admin'], { kind: 'other', method: 'logging/setLevel' })).toBe('deny method-denied');
    expect(decide(FULL, ['r', 'admin'], { kind: 'other', method: 'vendor/export' })).toBe('allow method-allowed');
    expect(decide(FULL, ['r'], { kind: 'other', method: 'tools/list' })).toBe('allow method-allowed');
    expect(decide(FULL, ['r'], { kind: 'other', method: 'vendor/other' })).toBe('deny method-unknown');
    expect(decide(FULL, ['r'], { kind: 'other', method: 'notifications/cancelled' })).toBe('allow method-allowed');
  });

  it('without resources or prompts sections, both need only the route scopes (as before)', () => {
    expect(decide(BARE, ['r'], { kind: 'resource', method: 'resources/read', uri: 'anything://x' })).toBe('allow method-allowed');
    expect(decide(BARE, ['r'], { kind: 'prompt', name: 'anything' })).toBe('allow method-allowed');
    expect(decide(BARE, [], { kind: 'prompt', name: 'anything' })).toBe('step-up route-scopes-missing');
    expect(isResourceVisible(BARE, 'anything://x')).toBe(true);
    expect(isPromptVisible(BARE, 'anything')).toBe(true);
  });

  it('refuses denied messages as if they did not exist, with the MCP error codes', () => {
    const refusal = (body: object) => {
      const parsed = parseMcpBody(Buffer.from(JSON.stringify(body)), '2025-06-18');
      const r = refusalFor(FULL, new Set(['r', 'admin']), parsed, decideBody(FULL, new Set(['r', 'admin']), parsed));
      return r && [r.code, r.shape.rpcCode, r.message];
    };
    expect(refusal({ jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'secret://k' } })).toEqual(['resource_denied', -32002, 'Resource not found: secret://k']);
    expect(refusal({ jsonrpc: '2.0', id: 2, method: 'resources/subscribe', params: { uri: 'nope://x' } })).toEqual(['resource_denied', -32002, 'Resource not found: nope://x']);
    expect(refusal({ jsonrpc: '2.0', id: 3, method: 'prompts/get', params: { name: 'internal_x' } })).toEqual(['prompt_denied', -32602, 'Unknown prompt: internal_x']);
    expect(refusal({ jsonrpc: '2.0', id: 4, method: 'vendor/other' })).toEqual(['method_denied', -32601, 'Method not found: vendor/other']);
    expect(refusal({ jsonrpc: '2.0', id: 5, method: 'resources/read', params: { uri: 'todo://list' } })).toBeUndefined();
  });

  it('refuses a resource read without a uri, or a prompts/get without a name, as invalid', () => {
    expect(() => parseMcpBody(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{}}'), '2025-06-18')).toThrow('resources/read needs params.uri');
    expect(() => parseMcpBody(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":7}}'), '2025-06-18')).toThrow('prompts/get needs params.name');
  });

  it('filters resources, templates and prompts lists to what someone may use', () => {
    const filter = new ListFilter({
      resource: (uri) => isResourceVisible(FULL, uri),
      resourceTemplate: (uri) => isResourceTemplateVisible(FULL, uri),
      prompt: (name) => isPromptVisible(FULL, name),
    });
    const body = (result: object) => Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result }));
    const shown = (result: object) => JSON.parse(filter.filterJsonBody(body(result))!.toString()).result;
    expect(shown({ resources: [{ uri: 'todo://list' }, { uri: 'secret://keys' }, { uri: 'admin://u' }, { uri: 'file:///x' }] }).resources).toEqual([{ uri: 'todo://list' }, { uri: 'admin://u' }]);
    expect(shown({ resourceTemplates: [{ uriTemplate: 'todo://item/{id}' }, { uriTemplate: 'secret://{k}' }] }).resourceTemplates).toEqual([{ uriTemplate: 'todo://item/{id}' }]);
    expect(shown({ prompts: [{ name: 'summarize' }, { name: 'internal_triage' }] }).prompts).toEqual([{ name: 'summarize' }]);
  });

  it('charges a resource rule its own budget', () => {
    const parsed = parseMcpBody(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"admin://users"}}'), '2025-06-18');
    const decisions = decideBody(FULL, new Set(['r', 'admin']), parsed);
    expect(rateLimitCharges(FULL, decisions).map((c) => [c.rule.id, c.cost])).toEqual([['resources["admin://*"].rateLimit', 1]]);
  });
});
