import { decodeJwt } from 'jose';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullGrant } from '../support/as-client.js';
import { DEFAULT_GRANTS, startAsStack, type AsStack } from '../support/as-stack.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';

/**
 * authorizationServer.tokens.claims: the IdP claims a config names travel in the gateway's own
 * access tokens, so a policy condition on them (when: { claims: { groups } }) decides on the
 * gateway's tokens as it does on an IdP's. Alice is in the IdP's todo-admins group, Bob is not.
 */
const POLICY = `scopes: [todo:read]
tools:
  list_todos: [todo:read]
  admin_stats:
    scopes: [todo:read]
    when: { claims: { groups: todo-admins } }
`;

describe("authorization server: IdP claims in the gateway's tokens", () => {
  let stack: AsStack;
  let issuer: string;

  beforeAll(async () => {
    stack = await startAsStack({ asExtra: `${DEFAULT_GRANTS}\n  tokens: { claims: [groups, email] }` });
    await writeFile(join(stack.dir, 'todo.yaml'), POLICY);
    await stack.reload((text) => text);
    issuer = stack.gateway.url;
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("carries the named claims, as the IdP said them, and nothing the config did not name", async () => {
    const grant = await fullGrant(issuer, stack.mcpUrl, { subject: 'alice', scope: 'todo:read' });
    const claims = decodeJwt(grant.token.access_token);
    expect(claims).toMatchObject({ sub: 'idp|alice', groups: ['todo-admins'], email: 'alice@example.test' });
    // The gateway's own claims are its own, whatever the IdP's say.
    expect(claims.iss).toBe(issuer);
    expect(claims.aud).toBe(stack.mcpUrl);
    expect(claims).not.toHaveProperty('nonce');
    expect(claims).not.toHaveProperty('at_hash');
  });

  it('lets a policy condition on them decide: a member calls the gated tool, others cannot even see it', async () => {
    const listOf = async (token: string) => {
      const session = await openSession(stack.mcpUrl, token);
      const list = await mcpRequest(stack.mcpUrl, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { token, sessionId: session });
      const names = ((await list.json()) as { result: { tools: { name: string }[] } }).result.tools.map((tool) => tool.name);
      const call = await mcpRequest(stack.mcpUrl, toolCall(3, 'admin_stats'), { token, sessionId: session });
      return { names, call: (await call.json()) as { result?: unknown; error?: { code: number } } };
    };
    const alice = await fullGrant(issuer, stack.mcpUrl, { subject: 'alice', scope: 'todo:read' });
    const bob = await fullGrant(issuer, stack.mcpUrl, { subject: 'bob', scope: 'todo:read' });
    const forAlice = await listOf(alice.token.access_token);
    expect(forAlice.names).toContain('admin_stats');
    expect(forAlice.call.result).toMatchObject({ content: [{ type: 'text' }] });
    const forBob = await listOf(bob.token.access_token);
    expect(forBob.names).not.toContain('admin_stats');
    expect(forBob.call.error?.code).toBe(-32602);
  });

  it('keeps them across a refresh (the IdP is not asked again)', async () => {
    const grant = await fullGrant(issuer, stack.mcpUrl, { subject: 'alice', scope: 'todo:read' });
    const refreshed = (await (
      await fetch(`${issuer}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: grant.token.refresh_token!, client_id: grant.clientId }),
      })
    ).json()) as { access_token: string };
    expect(decodeJwt(refreshed.access_token)).toMatchObject({ groups: ['todo-admins'], email: 'alice@example.test' });
  });
});
