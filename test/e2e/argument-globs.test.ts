import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * Issue 23: an argument glob `acme/*` must not admit `acme/../evil/repo`, which an upstream
 * building `/repos/${repo}` would resolve to `evil/repo`. Through the gateway, with a real token
 * and the real SDK upstream, whose request log shows what reached it.
 */
describe('argument globs are path globs, end to end', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({
      responseMode: 'json',
      policy: `scopes: [todo:read]
tools:
  list_todos: [todo:read]
  add_todo:
    scopes: [todo:read]
    arguments: { title: { glob: "acme/*" } }
`,
    });
  }, 30_000);
  afterAll(() => stack?.close());

  it('refuses values that walk out of acme/ or cross a segment, unforwarded, and forwards acme/widgets', async () => {
    const bearer = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read', subject: 'dave' })).accessToken;
    const sessionId = await openSession(stack.mcpUrl, bearer);
    stack.upstream.clearLog();
    const refused = ['acme/../evil/repo', 'acme/%2e%2e/evil/repo', 'acme/%252e%252e/evil', 'acme%2f..%2fevil', 'acme\\..\\evil', 'acme/team/repo', 'acme//evil'];
    let id = 10;
    for (const title of refused) {
      const response = await mcpRequest(stack.mcpUrl, toolCall(++id, 'add_todo', { title }), { token: bearer, sessionId });
      expect([title, await response.json()]).toEqual([title, { jsonrpc: '2.0', id, error: { code: -32602, message: 'Invalid arguments for tool add_todo: not allowed by policy' } }]);
    }
    expect(stack.upstream.requests.flatMap((r) => r.toolNames)).toEqual([]);
    expect(stack.logs.filter((e) => e.event === 'authz' && e.sub === 'dave' && e.reason === 'arguments-not-allowed')).toHaveLength(refused.length);

    const allowed = await mcpRequest(stack.mcpUrl, toolCall(++id, 'add_todo', { title: 'acme/widgets' }), { token: bearer, sessionId });
    expect(((await allowed.json()) as { result?: { content: { text: string }[] } }).result?.content[0]?.text).toMatch(/^Added #\d+ acme\/widgets$/);
    expect(stack.upstream.requests.flatMap((r) => r.toolNames)).toEqual(['add_todo']);
    expect(stack.upstream.requests.map((r) => (r.body as { params?: { arguments?: unknown } }).params?.arguments).filter(Boolean)).toEqual([{ title: 'acme/widgets' }]);
  });
});
