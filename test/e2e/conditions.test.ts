import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { startStack, type Stack } from '../support/stack.js';

/** Conditions on who the token is and on tool arguments, with real tokens from the real IdP. */
describe('rule conditions with real tokens', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({
      responseMode: 'json',
      policy: `scopes: [todo:read]
tools:
  list_todos: [todo:read]
  admin_reset:
    scopes: [todo:read]
    when: { subjects: [alice] }
  add_todo:
    scopes: [todo:read]
    arguments: { title: { glob: "ok:*" } }
`,
    });
  }, 30_000);
  afterAll(() => stack?.close());

  it('admits only the listed subject, and answers anyone else as if the tool did not exist, unforwarded', async () => {
    const token = async (subject: string) => (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read', subject })).accessToken;
    const [alice, bob] = await Promise.all([token('alice'), token('bob')]);
    const call = async (bearer: string) => {
      const sessionId = await openSession(stack.mcpUrl, bearer);
      stack.upstream.clearLog();
      const response = await mcpRequest(stack.mcpUrl, toolCall(3, 'admin_reset'), { token: bearer, sessionId });
      return { body: (await response.json()) as { result?: unknown; error?: { code: number; message: string } }, forwarded: stack.upstream.requests.length };
    };
    expect((await call(alice)).body.result).toEqual({ content: [{ type: 'text', text: 'Todo list reset' }] });
    const refused = await call(bob);
    expect(refused.body.error).toEqual({ code: -32602, message: 'Unknown tool: admin_reset' });
    expect(refused.forwarded).toBe(0);
    expect(stack.logs.some((e) => e.event === 'authz' && e.sub === 'bob' && e.reason === 'condition-unmet')).toBe(true);
  });

  it('forwards a call whose arguments fit, and refuses one whose arguments do not, unforwarded', async () => {
    const bearer = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read', subject: 'carol' })).accessToken;
    const sessionId = await openSession(stack.mcpUrl, bearer);
    stack.upstream.clearLog();
    const good = await mcpRequest(stack.mcpUrl, toolCall(4, 'add_todo', { title: 'ok: ship it' }), { token: bearer, sessionId });
    expect(((await good.json()) as { result?: unknown }).result).toEqual({ content: [{ type: 'text', text: expect.stringMatching(/^Added #\d+ ok: ship it$/) }] });
    const bad = await mcpRequest(stack.mcpUrl, toolCall(5, 'add_todo', { title: 'drop table todos' }), { token: bearer, sessionId });
    expect(await bad.json()).toEqual({ jsonrpc: '2.0', id: 5, error: { code: -32602, message: 'Invalid arguments for tool add_todo: not allowed by policy' } });
    expect(stack.upstream.requests.flatMap((r) => r.toolNames)).toEqual(['add_todo']);
  });
});
