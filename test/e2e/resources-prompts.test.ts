import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { SAMPLE_INTERNAL_PROMPT_NAME, SAMPLE_ITEM_TEMPLATE, SAMPLE_PROMPT_NAME, SAMPLE_RESOURCE_URI, SAMPLE_SECRET_RESOURCE_URI } from '../../dev/upstream.js';
import { mcpRequest, openSession } from '../support/mcp-http.js';
import { connectAuthorizedClient, type AuthorizedClient } from '../support/sdk-client.js';
import { startStack, type Stack } from '../support/stack.js';
import { mcpErrorOf } from '../support/refusals.js';

/**
 * Policies cover all of MCP, not only tools: resources by URI glob, prompts by name, and a rule
 * (with a safe default) for every other method. The real SDK client lists, reads and gets
 * through the gateway; what a policy hides is neither listed nor reachable, and nothing denied
 * reaches the upstream.
 */
const POLICY = `
scopes: [todo:read]
tools:
  "*": [todo:read]
resources:
  "todo://*": [todo:read]
  "secret://*": [todo:admin]
prompts:
  ${SAMPLE_PROMPT_NAME}: [todo:read]
  ${SAMPLE_INTERNAL_PROMPT_NAME}: deny
methods:
  completion/complete: deny
`;

describe('resources, prompts and other methods', () => {
  let stack: Stack;
  let reader: AuthorizedClient;

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'sse', policy: POLICY });
    reader = await connectAuthorizedClient(stack.mcpUrl);
  }, 30_000);
  afterAll(async () => {
    await reader?.client.close();
    await stack?.close();
  });

  it('lists only the resources, templates and prompts the policy allows someone', async () => {
    const resources = (await reader.client.listResources()).resources.map((r) => r.uri);
    expect(resources).toContain(SAMPLE_RESOURCE_URI);
    // secret:// needs todo:admin: hidden from no one who could step up, so it stays listed.
    expect(resources).toContain(SAMPLE_SECRET_RESOURCE_URI);
    expect((await reader.client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)).toEqual([SAMPLE_ITEM_TEMPLATE]);
    const prompts = (await reader.client.listPrompts()).prompts.map((p) => p.name);
    expect(prompts).toEqual([SAMPLE_PROMPT_NAME]);
  });

  it('reads an allowed resource and gets an allowed prompt', async () => {
    expect((await reader.client.readResource({ uri: SAMPLE_RESOURCE_URI })).contents[0]?.uri).toBe(SAMPLE_RESOURCE_URI);
    expect((await reader.client.readResource({ uri: 'todo://item/1' })).contents[0]?.uri).toBe('todo://item/1');
    expect((await reader.client.getPrompt({ name: SAMPLE_PROMPT_NAME })).messages.length).toBeGreaterThan(0);
  });

  it('steps up for a resource that needs more scopes, then reads it', async () => {
    const contents = await reader.withAuth(() => reader.client.readResource({ uri: SAMPLE_SECRET_RESOURCE_URI }));
    expect(contents.contents[0]?.uri).toBe(SAMPLE_SECRET_RESOURCE_URI);
    expect(reader.provider.requestedScopes.at(-1)).toBe('todo:read todo:admin');
  });

  it('answers a denied prompt, an unmatched resource and a denied method as if they did not exist, unforwarded', async () => {
    stack.upstream.clearLog();
    const prompt = await mcpErrorOf(reader.client.getPrompt({ name: SAMPLE_INTERNAL_PROMPT_NAME }));
    expect([prompt.code, prompt.message]).toEqual([-32602, `MCP error -32602: Unknown prompt: ${SAMPLE_INTERNAL_PROMPT_NAME}`]);
    const resource = await mcpErrorOf(reader.client.readResource({ uri: 'file:///etc/passwd' }));
    expect([resource.code, resource.message]).toEqual([-32002, 'MCP error -32002: Resource not found: file:///etc/passwd']);
    const completion = await mcpErrorOf(reader.client.complete({ ref: { type: 'ref/prompt', name: SAMPLE_PROMPT_NAME }, argument: { name: 'x', value: 'y' } }));
    expect(completion.code).toBe(-32601);
    expect(stack.upstream.requests.flatMap((r) => r.rpcMethods)).toEqual([]);
  });

  it('denies a method outside the MCP specification unless the policy names it', async () => {
    const token = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read', subject: 'carol' })).accessToken;
    const sessionId = await openSession(stack.mcpUrl, token);
    stack.upstream.clearLog();
    const response = await mcpRequest(stack.mcpUrl, { jsonrpc: '2.0', id: 5, method: 'admin/dumpDatabase', params: {} }, { token, sessionId });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 5, error: { code: -32601, message: 'Method not found: admin/dumpDatabase' } });
    expect(stack.upstream.requests).toHaveLength(0);
  });
});
