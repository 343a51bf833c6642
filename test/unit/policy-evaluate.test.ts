import { describe, expect, it } from 'vitest';
import { refusalOf } from '../support/refusals.js';
import type { McpBody, McpMessage } from '../../src/mcp/message.js';
import { enforceBody, enforceRouteAccess } from '../../src/policy/enforce.js';
import { decideRequest, decideRouteAccess, decideToolCall, isToolVisible, matchToolRule, stepUpScopes } from '../../src/policy/evaluate.js';
import { compileGlob, isGlob } from '../../src/policy/glob.js';
import { compilePolicy, parsePolicy } from '../../src/policy/load.js';
import type { CompiledPolicy } from '../../src/policy/types.js';

type ToolsDoc = Record<string, string[] | 'deny'>;

function policyOf(tools: ToolsDoc, scopes: string[] = ['todo:read']): CompiledPolicy {
  return compilePolicy('policy.yaml', { scopes, tools });
}

function policyFromYaml(text: string): CompiledPolicy {
  const result = parsePolicy('policy.yaml', text);
  if (!result.ok) throw new Error(`policy fixture invalid: ${JSON.stringify(result.problems)}`);
  return result.policy;
}

const granted = (...scopes: string[]) => new Set(scopes);

const TODO_POLICY = `
scopes: [todo:read]
tools:
  list_todos: [todo:read]
  add_todo: [todo:write]
  "admin_*": [todo:admin]
  secret_tool: deny
  "secret_*": [todo:read]
`;

function call(id: string | number, tool: string): McpMessage {
  return { kind: 'request', id, method: 'tools/call', policy: { kind: 'tool-call', tool } };
}
function request(id: string | number, method: string): McpMessage {
  return { kind: 'request', id, method, policy: { kind: 'other', method } };
}
function notification(method: string): McpMessage {
  return { kind: 'notification', method, policy: { kind: 'other', method } };
}
function response(id: string | number | null): McpMessage {
  return { kind: 'response', id };
}
function body(...messages: McpMessage[]): McpBody {
  return { messages, isBatch: messages.length > 1 };
}

/** Runs `fn`, returns the Refusal it threw; fails the test when it throws nothing or something else. */

describe('tool rule matching', () => {
  it('lets an exact name beat a glob listed before it', () => {
    const policy = policyOf({ 'admin_*': ['todo:admin'], admin_users: ['todo:read'] });
    expect(matchToolRule(policy, 'admin_users')?.pattern).toBe('admin_users');
    expect(decideToolCall(policy, granted('todo:read'), 'admin_users')).toMatchObject({ effect: 'allow', reason: 'tool-allowed' });
  });

  it('tries globs in file order and the first match wins', () => {
    const policy = policyOf({ 'admin_*': ['todo:admin'], 'admin_u*': ['todo:read'], '*': 'deny' });
    expect(matchToolRule(policy, 'admin_users')?.pattern).toBe('admin_*');
    expect(matchToolRule(policy, 'other')?.pattern).toBe('*');

    const reversed = policyOf({ 'admin_u*': ['todo:read'], 'admin_*': ['todo:admin'] });
    expect(matchToolRule(reversed, 'admin_users')?.pattern).toBe('admin_u*');
  });

  it('keeps file order of globs from a parsed YAML policy', () => {
    const policy = policyFromYaml('tools:\n  "b*": deny\n  "*": [x]\n  "a*": [y]\n');
    expect(policy.globTools.map((r) => r.pattern)).toEqual(['b*', '*', 'a*']);
    expect(matchToolRule(policy, 'abc')?.pattern).toBe('*');
  });

  it('names the matched rule in the decision', () => {
    const policy = policyOf({ 'admin_*': ['todo:admin'] });
    expect(decideToolCall(policy, granted('todo:read', 'todo:admin'), 'admin_x')).toEqual({
      effect: 'allow',
      reason: 'tool-allowed',
      rule: 'tools["admin_*"]',
    });
  });
});

describe('decideToolCall / decideRequest', () => {
  const policy = policyFromYaml(TODO_POLICY);

  it('denies a tool whose entry is deny, with reason tool-denied', () => {
    expect(decideToolCall(policy, granted('todo:read', 'todo:write', 'todo:admin'), 'secret_tool')).toMatchObject({
      effect: 'deny',
      reason: 'tool-denied',
    });
  });

  it('denies a tool no entry matches, with reason tool-unmatched', () => {
    expect(decideToolCall(policy, granted('todo:read', 'todo:write', 'todo:admin'), 'unlisted')).toEqual({
      effect: 'deny',
      reason: 'tool-unmatched',
    });
  });

  it('allows a tool whose scopes are all held', () => {
    expect(decideToolCall(policy, granted('todo:read', 'todo:write'), 'add_todo')).toMatchObject({ effect: 'allow' });
  });

  it('steps up a tool call listing exactly the missing scopes', () => {
    const multi = policyOf({ big: ['a', 'b', 'c'] });
    expect(decideToolCall(multi, granted('todo:read', 'b'), 'big')).toEqual({
      effect: 'step-up',
      reason: 'tool-scopes-missing',
      rule: 'tools["big"]',
      missing: ['a', 'c'],
    });
  });

  it('steps up for the route scopes before looking at the tool', () => {
    expect(decideRequest(policy, granted('todo:write'), { kind: 'tool-call', tool: 'secret_tool' })).toEqual({
      effect: 'step-up',
      reason: 'route-scopes-missing',
      rule: 'scopes',
      missing: ['todo:read'],
    });
  });

  it('allows methods other than tools/call with the route scopes only', () => {
    expect(decideRequest(policy, granted('todo:read'), { kind: 'other', method: 'tools/list' })).toMatchObject({
      effect: 'allow',
      reason: 'method-allowed',
    });
  });

  it('allows every request on a route without scopes when the tool needs none', () => {
    const open = policyOf({ ping: [] }, []);
    expect(decideRouteAccess(open, granted())).toMatchObject({ effect: 'allow' });
    expect(decideToolCall(open, granted(), 'ping')).toMatchObject({ effect: 'allow' });
  });
});

describe('compileGlob', () => {
  it('is case-sensitive and anchored: admin_* matches neither xadmin_1 nor ADMIN_1', () => {
    const matches = compileGlob('admin_*');
    expect(matches('admin_1')).toBe(true);
    expect(matches('admin_')).toBe(true);
    expect(matches('xadmin_1')).toBe(false);
    expect(matches('ADMIN_1')).toBe(false);
  });

  it('matches exactly one character with ?', () => {
    const matches = compileGlob('v?');
    expect(matches('v1')).toBe(true);
    expect(matches('v')).toBe(false);
    expect(matches('v12')).toBe(false);
  });

  it('counts one code point for ? (an astral character is one character)', () => {
    expect(compileGlob('a?b')('a😀b')).toBe(true);
  });

  it('treats regex metacharacters in a.b* literally', () => {
    const matches = compileGlob('a.b*');
    expect(matches('a.bcd')).toBe(true);
    expect(matches('axbcd')).toBe(false);
  });

  it('treats regex metacharacters in x+(y) literally', () => {
    const matches = compileGlob('x+(y)');
    expect(matches('x+(y)')).toBe(true);
    expect(matches('xxy')).toBe(false);
    expect(matches('xy')).toBe(false);
  });

  it('treats the other metacharacters ^$[]{}|\\/ literally', () => {
    const pattern = '^a$[b]{2}|c\\/*';
    const matches = compileGlob(pattern);
    expect(matches('^a$[b]{2}|c\\/tail')).toBe(true);
    expect(matches('abb')).toBe(false);
    expect(matches('c')).toBe(false);
  });

  it('compiles a glob containing a hyphen and matches it literally', () => {
    // Hyphens are common in MCP tool names; the glob must not throw for them.
    const compile = () => compileGlob('admin-*');
    expect(compile).not.toThrow();
    const matches = compile();
    expect(matches('admin-users')).toBe(true);
    expect(matches('adminXusers')).toBe(false);
  });

  it('lets * match a newline inside a name', () => {
    expect(compileGlob('a*b')('a\nb')).toBe(true);
    expect(compileGlob('a?b')('a\nb')).toBe(true);
  });

  it('never lets a newline escape the anchors', () => {
    expect(compileGlob('safe*')('safe\nsecret')).toBe(true); // * spans the newline, as documented
    expect(compileGlob('s?fe')('safe\nsecret')).toBe(false);
    expect(compileGlob('*secret')('public\nsecret\nx')).toBe(false);
    expect(compileGlob('safe?')('safe\n')).toBe(true);
    expect(compileGlob('safe?')('safe\n\n')).toBe(false);
  });

  it('does not let an exact rule for safe match safe\\nsecret', () => {
    const policy = policyOf({ safe: ['todo:read'], 'sa?e': ['todo:read'] });
    expect(matchToolRule(policy, 'safe\nsecret')).toBeUndefined();
    expect(decideToolCall(policy, granted('todo:read'), 'safe\nsecret')).toMatchObject({ effect: 'deny', reason: 'tool-unmatched' });
  });

  it('recognises globs by * or ? only', () => {
    expect(isGlob('a*')).toBe(true);
    expect(isGlob('a?')).toBe(true);
    expect(isGlob('a.b+(c)')).toBe(false);
  });
});

describe('parsePolicy with hyphenated globs', () => {
  it('loads a policy with a glob containing a hyphen instead of throwing', () => {
    const load = () => parsePolicy('policy.yaml', 'tools:\n  "admin-*": [todo:admin]\n');
    expect(load).not.toThrow();
    const result = load();
    expect(result.ok).toBe(true);
    if (result.ok) expect(isToolVisible(result.policy, 'admin-users')).toBe(true);
  });
});

describe('isToolVisible', () => {
  const policy = policyFromYaml(TODO_POLICY);

  it('hides a tool whose entry is deny', () => {
    expect(isToolVisible(policy, 'secret_tool')).toBe(false);
  });

  it('hides a tool no entry matches', () => {
    expect(isToolVisible(policy, 'unlisted')).toBe(false);
  });

  it('shows a tool that merely needs more scopes', () => {
    expect(isToolVisible(policy, 'admin_purge')).toBe(true);
    expect(isToolVisible(policy, 'add_todo')).toBe(true);
  });

  it('shows a glob-matched tool even when an exact deny exists for another name', () => {
    expect(isToolVisible(policy, 'secret_other')).toBe(true);
  });
});

describe('scopesSupported', () => {
  it('lists route scopes first, then tool scopes in file order, without duplicates', () => {
    const policy = policyFromYaml(`
scopes: [r1, r2]
tools:
  a: [t1, r1]
  b: [t2, t1]
  c: deny
  "d*": [r2, t3]
`);
    expect(policy.scopesSupported).toEqual(['r1', 'r2', 't1', 't2', 't3']);
  });

  it('is empty for an empty policy', () => {
    expect(policyFromYaml('').scopesSupported).toEqual([]);
  });
});

describe('stepUpScopes', () => {
  const policy = policyFromYaml('scopes: [r1, r2]\ntools:\n  a: [t1]\n  b: [t2]\n');

  it('keeps held scopes the route uses, in scopesSupported order, then adds the missing ones', () => {
    expect(stepUpScopes(policy, granted('t1', 'r2', 'r1'), ['t2'])).toEqual(['r1', 'r2', 't1', 't2']);
  });

  it('never includes scopes the token holds that the policy does not name', () => {
    expect(stepUpScopes(policy, granted('r1', 'openid', 'other:scope'), ['t1'])).toEqual(['r1', 't1']);
  });

  it('does not repeat a missing scope', () => {
    expect(stepUpScopes(policy, granted('r1'), ['t1', 't1'])).toEqual(['r1', 't1']);
  });
});

describe('enforceRouteAccess', () => {
  const policy = policyFromYaml(TODO_POLICY);

  it('throws insufficient_scope naming the route scopes when they are missing', () => {
    const refusal = refusalOf(() => enforceRouteAccess(policy, granted('todo:write')));
    expect(refusal.code).toBe('insufficient_scope');
    expect(refusal.details.scope).toEqual(['todo:write', 'todo:read']);
  });

  it('allows a token with the route scopes', () => {
    expect(() => enforceRouteAccess(policy, granted('todo:read'))).not.toThrow();
  });
});

describe('enforceBody', () => {
  const policy = policyFromYaml(TODO_POLICY);

  it('returns one allow decision per message when all are allowed', () => {
    const decisions = enforceBody(policy, granted('todo:read'), body(call(1, 'list_todos'), request(2, 'tools/list')));
    expect(decisions.map((d) => d.decision.effect)).toEqual(['allow', 'allow']);
  });

  it('refuses a whole batch with tool_denied when one element is denied, answering every request id', () => {
    const refusal = refusalOf(() =>
      enforceBody(
        policy,
        granted('todo:read', 'todo:write'),
        body(call(1, 'list_todos'), call('b', 'secret_tool'), notification('notifications/initialized'), call(3, 'add_todo')),
      ),
    );
    expect(refusal.code).toBe('tool_denied');
    expect(refusal.details.rpcIds).toEqual([1, 'b', 3]);
  });

  it('words a denied tool exactly as an unknown one', () => {
    const refusal = refusalOf(() => enforceBody(policy, granted('todo:read'), body(call(7, 'secret_tool'))));
    expect(refusal.code).toBe('tool_denied');
    expect(refusal.message).toBe('Unknown tool: secret_tool');
    const unmatched = refusalOf(() => enforceBody(policy, granted('todo:read'), body(call(8, 'nope'))));
    expect(unmatched.code).toBe('tool_denied');
    expect(unmatched.message).toBe('Unknown tool: nope');
  });

  it('prefers deny over step-up when a batch has both', () => {
    const refusal = refusalOf(() => enforceBody(policy, granted('todo:read'), body(call(1, 'add_todo'), call(2, 'secret_tool'))));
    expect(refusal.code).toBe('tool_denied');
  });

  it('steps up across two messages with the union of the missing scopes', () => {
    const refusal = refusalOf(() =>
      enforceBody(policy, granted('todo:read'), body(call(1, 'add_todo'), call(2, 'admin_purge'), call(3, 'list_todos'))),
    );
    expect(refusal.code).toBe('insufficient_scope');
    expect(refusal.details.scope).toEqual(['todo:read', 'todo:write', 'todo:admin']);
    expect(refusal.details.rpcIds).toEqual([1, 2, 3]);
  });

  it('steps up for the route scopes when a body lacks them', () => {
    const refusal = refusalOf(() => enforceBody(policy, granted(), body(request(1, 'tools/list'))));
    expect(refusal.code).toBe('insufficient_scope');
    expect(refusal.details.scope).toEqual(['todo:read']);
  });

  it('passes notifications and responses with the route scopes', () => {
    const decisions = enforceBody(policy, granted('todo:read'), body(notification('notifications/initialized'), response(5), response(null)));
    expect(decisions.map((d) => d.decision)).toEqual([
      { effect: 'allow', reason: 'method-allowed', rule: 'scopes' },
      { effect: 'allow', reason: 'method-allowed', rule: 'scopes' },
      { effect: 'allow', reason: 'method-allowed', rule: 'scopes' },
    ]);
  });

  it('steps up a response without the route scopes, with no request ids to answer', () => {
    const refusal = refusalOf(() => enforceBody(policy, granted(), body(response(5))));
    expect(refusal.code).toBe('insufficient_scope');
    expect(refusal.details.rpcIds).toEqual([]);
  });
});

describe('glob matching cost', () => {
  it('matches a hostile name against a many-star glob in linear-ish time', () => {
    const matches = compileGlob('*_*_*_delete');
    const name = '_'.repeat(20_000);
    const started = performance.now();
    expect(matches(name)).toBe(false);
    expect(performance.now() - started).toBeLessThan(250);
  });

  it('handles names with dashes, slashes and astral characters literally', () => {
    expect(compileGlob('admin-*')('admin-users')).toBe(true);
    expect(compileGlob('a/b?')('a/b😀')).toBe(true);
    expect(compileGlob('a/b?')('a/b😀x')).toBe(false);
  });
});

describe('showsEveryTool', () => {
  const compiled = (text: string) => {
    const result = parsePolicy('p.yaml', text);
    if (!result.ok) throw new Error('policy should parse');
    return result.policy;
  };

  it('is true only with a catch-all rule and no deny', () => {
    expect(compiled('tools:\n  "*": [a]\n').showsEveryTool).toBe(true);
    expect(compiled('tools:\n  x: [b]\n  "**": [a]\n').showsEveryTool).toBe(true);
    expect(compiled('tools:\n  "*": [a]\n  secret: deny\n').showsEveryTool).toBe(false);
    expect(compiled('tools:\n  "admin_*": [a]\n').showsEveryTool).toBe(false);
    expect(compiled('scopes: [a]\n').showsEveryTool).toBe(false);
  });
});
