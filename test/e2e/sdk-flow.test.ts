import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAuthorizedClient, type AuthorizedClient } from '../support/sdk-client.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * The whole promise, end to end: the real MCP SDK client, with nothing but the MCP
 * authorization spec, connects through the gateway to an SDK upstream that has no auth,
 * gets a token from a real IdP (oidc-provider: discovery, dynamic registration, PKCE,
 * RFC 8707 resource, RFC 9068 at+jwt), calls what its scopes allow, steps up for more, and
 * never sees or reaches what the policy hides. The upstream's own request log is the witness.
 */
describe.each([
  { responseMode: 'json', signingAlg: 'RS256', stateless: false },
  { responseMode: 'sse', signingAlg: 'ES256', stateless: false },
  { responseMode: 'json', signingAlg: 'ES256', stateless: true },
] as const)('SDK client through the gateway ($responseMode upstream, $signingAlg tokens, stateless: $stateless)', ({ responseMode, signingAlg, stateless }) => {
  let stack: Stack;
  let alice: AuthorizedClient;

  beforeAll(async () => {
    stack = await startStack({ responseMode, signingAlg, stateless });
    alice = await connectAuthorizedClient(stack.mcpUrl, 'alice');
  });
  afterAll(async () => {
    await alice?.close();
    await stack?.close();
  });

  it('authorises with the scopes the 401 challenge asked for, for this resource', () => {
    expect(alice.provider.requestedScopes).toEqual(['todo:read']);
    const claims = decodeJwt(alice.provider.tokenHistory[0]!.access_token);
    expect(claims.aud).toBe(stack.mcpUrl);
    expect(claims.iss).toBe(stack.idp.issuer);
    expect(claims.scope).toBe('todo:read');
  });

  it('lists only the tools some scope can unlock', async () => {
    const { tools } = await alice.client.listTools();
    const names = tools.map((t) => t.name).sort();
    expect(names).toEqual(['add_todo', 'admin_reset', 'admin_stats', 'delete_todo', 'list_todos', 'slow_progress']);
    // The upstream did have the hidden ones: the gateway removed them.
    expect(stack.upstream.requests.some((r) => r.rpcMethods.includes('tools/list'))).toBe(true);
  });

  it('calls a tool the token allows', async () => {
    const result = await alice.client.callTool({ name: 'list_todos', arguments: {} });
    expect(result.isError).toBeFalsy();
    expect(JSON.stringify(result.content)).toContain('text');
  });

  it('steps up for a tool that needs more scope, keeping the scopes it had', async () => {
    const before = stack.upstream.requests.filter((r) => r.toolNames.includes('add_todo')).length;
    const result = await alice.withAuth(() => alice.client.callTool({ name: 'add_todo', arguments: { title: 'stepped up' } }));
    expect(result.isError).toBeFalsy();
    expect(alice.provider.requestedScopes).toEqual(['todo:read', 'todo:read todo:write']);
    const latest = decodeJwt(alice.provider.tokenHistory.at(-1)!.access_token);
    expect(String(latest.scope).split(' ').sort()).toEqual(['todo:read', 'todo:write']);
    // Only the authorised retry reached the upstream, exactly once.
    expect(stack.upstream.requests.filter((r) => r.toolNames.includes('add_todo')).length).toBe(before + 1);
    // Earlier permissions survive the step-up.
    const listed = await alice.client.callTool({ name: 'list_todos', arguments: {} });
    expect(JSON.stringify(listed.content)).toContain('stepped up');
  });

  it('answers a denied tool and an unmatched tool as unknown tools, without reaching the upstream', async () => {
    for (const name of ['secret_tool', 'unlisted_tool']) {
      const error = await alice.client.callTool({ name, arguments: {} }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(McpError);
      expect((error as McpError).code).toBe(-32602);
      expect((error as McpError).message).toContain(`Unknown tool: ${name}`);
    }
    const reached = stack.upstream.requests.flatMap((r) => r.toolNames);
    expect(reached).not.toContain('secret_tool');
    expect(reached).not.toContain('unlisted_tool');
  });

  it('never sends the client token, or any Authorization header, upstream', () => {
    const tokens = alice.provider.tokenHistory.map((t) => t.access_token);
    expect(stack.upstream.requests.length).toBeGreaterThan(3);
    for (const request of stack.upstream.requests) {
      expect(request.headers.authorization).toBeUndefined();
      const raw = JSON.stringify(request);
      for (const token of tokens) expect(raw).not.toContain(token);
    }
  });
});

describe('streaming through the gateway', () => {
  let stack: Stack;
  let alice: AuthorizedClient;

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'sse' });
    alice = await connectAuthorizedClient(stack.mcpUrl, 'alice');
  });
  afterAll(async () => {
    await alice?.close();
    await stack?.close();
  });

  it('passes SSE progress events through one by one, before the result', async () => {
    const arrivals: number[] = [];
    const started = Date.now();
    const result = await alice.client.callTool(
      { name: 'slow_progress', arguments: { steps: 3, delayMs: 150 } },
      undefined,
      { onprogress: () => arrivals.push(Date.now() - started) },
    );
    const finished = Date.now() - started;
    expect(result.isError).toBeFalsy();
    expect(arrivals).toHaveLength(3);
    // Unbuffered: the first progress event arrives well before the call completes.
    expect(finished - arrivals[0]!).toBeGreaterThanOrEqual(250);
  });
});
