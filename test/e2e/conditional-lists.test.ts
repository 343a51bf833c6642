import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAMPLE_INTERNAL_PROMPT_NAME, SAMPLE_ITEM_TEMPLATE, SAMPLE_PROMPT_NAME, SAMPLE_RESOURCE_URI, SAMPLE_SECRET_RESOURCE_URI } from '../../dev/upstream.js';
import { connectAuthorizedClient, type AuthorizedClient } from '../support/sdk-client.js';
import { startStack, type Stack } from '../support/stack.js';
import { mcpErrorOf } from '../support/refusals.js';

/**
 * Issue 23 item 10: lists agree with decisions. A tool, resource, template or prompt whose rule
 * has a `when` the principal does not fit is answered as if it did not exist, so it is not
 * listed either; a principal who fits sees and uses it. Group claims come from the real IdP.
 * Principals alike in every condition share a list filter (and the answers it remembers), so
 * two principals who differ must each get their own lists, even at the same time.
 */
const ADMINS_ONLY = `
    scopes: [todo:read]
    when: { claims: { groups: admins } }`;
const POLICY = `
scopes: [todo:read]
tools:
  list_todos: [todo:read]
  admin_stats:${ADMINS_ONLY}
resources:
  "${SAMPLE_RESOURCE_URI}": [todo:read]
  "secret://*":${ADMINS_ONLY}
  "todo://item/*":${ADMINS_ONLY}
prompts:
  ${SAMPLE_PROMPT_NAME}: [todo:read]
  ${SAMPLE_INTERNAL_PROMPT_NAME}:${ADMINS_ONLY}
`;
const CLAIMS = {
  alice: { groups: ['staff', 'admins'] },
  bob: { groups: ['staff'] },
  // Alike alice in every condition, not in every claim.
  carol: { groups: ['admins'], department: 'ops' },
};

/** What each kind of principal must be shown. */
const SEES = {
  admin: { tools: ['admin_stats', 'list_todos'], resources: [SAMPLE_SECRET_RESOURCE_URI, SAMPLE_RESOURCE_URI], templates: [SAMPLE_ITEM_TEMPLATE], prompts: [SAMPLE_INTERNAL_PROMPT_NAME, SAMPLE_PROMPT_NAME] },
  other: { tools: ['list_todos'], resources: [SAMPLE_RESOURCE_URI], templates: [], prompts: [SAMPLE_PROMPT_NAME] },
};

async function listsOf({ client }: AuthorizedClient) {
  const [tools, resources, templates, prompts] = await Promise.all([client.listTools(), client.listResources(), client.listResourceTemplates(), client.listPrompts()]);
  return {
    tools: tools.tools.map((tool) => tool.name).sort(),
    resources: resources.resources.map((resource) => resource.uri).sort(),
    templates: templates.resourceTemplates.map((template) => template.uriTemplate).sort(),
    prompts: prompts.prompts.map((prompt) => prompt.name).sort(),
  };
}

describe('items a principal can never use are not listed to it (issue 23 item 10)', () => {
  let stack: Stack;
  let alice: AuthorizedClient;
  let bob: AuthorizedClient;
  let carol: AuthorizedClient;
  const forwarded = (method: string) => stack.upstream.requests.filter((record) => record.rpcMethods.includes(method));

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'sse', policy: POLICY, accountClaims: CLAIMS });
    [alice, bob, carol] = await Promise.all([connectAuthorizedClient(stack.mcpUrl, 'alice'), connectAuthorizedClient(stack.mcpUrl, 'bob'), connectAuthorizedClient(stack.mcpUrl, 'carol')]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all([alice, bob, carol].map((client) => client?.close()));
    await stack?.close();
  });

  it('hides a when-gated tool from a principal without the claim, and answers its call Unknown tool, unforwarded', async () => {
    expect((await listsOf(bob)).tools).toEqual(SEES.other.tools);
    stack.upstream.clearLog();
    const error = await mcpErrorOf(bob.client.callTool({ name: 'admin_stats', arguments: {} }));
    expect([error.code, error.message]).toEqual([-32602, 'MCP error -32602: Unknown tool: admin_stats']);
    expect(forwarded('tools/call')).toEqual([]);
    expect(stack.logs.some((entry) => entry.event === 'authz' && entry.sub === 'bob' && entry.reason === 'condition-unmet')).toBe(true);
  });

  it('lists the tool to a principal with the claim, who can call it (positive control)', async () => {
    expect((await listsOf(alice)).tools).toEqual(SEES.admin.tools);
    stack.upstream.clearLog();
    const result = await alice.client.callTool({ name: 'admin_stats', arguments: {} });
    expect(result.isError).toBeUndefined();
    expect(JSON.stringify(result.content)).toContain('toolCalls');
    expect(forwarded('tools/call').flatMap((record) => record.toolNames)).toEqual(['admin_stats']);
  });

  it('hides a when-gated resource, template and prompt from a principal without the claim, and refuses their use unforwarded', async () => {
    const lists = await listsOf(bob);
    expect(lists.resources).toEqual(SEES.other.resources);
    expect(lists.templates).toEqual(SEES.other.templates);
    expect(lists.prompts).toEqual(SEES.other.prompts);
    stack.upstream.clearLog();
    const resource = await mcpErrorOf(bob.client.readResource({ uri: SAMPLE_SECRET_RESOURCE_URI }));
    expect([resource.code, resource.message]).toEqual([-32002, `MCP error -32002: Resource not found: ${SAMPLE_SECRET_RESOURCE_URI}`]);
    const item = await mcpErrorOf(bob.client.readResource({ uri: 'todo://item/1' }));
    expect(item.code).toBe(-32002);
    const prompt = await mcpErrorOf(bob.client.getPrompt({ name: SAMPLE_INTERNAL_PROMPT_NAME }));
    expect([prompt.code, prompt.message]).toEqual([-32602, `MCP error -32602: Unknown prompt: ${SAMPLE_INTERNAL_PROMPT_NAME}`]);
    expect(stack.upstream.requests.flatMap((record) => record.rpcMethods)).toEqual([]);
  });

  it('lists them to a principal with the claim, who can use them (positive control)', async () => {
    const lists = await listsOf(alice);
    expect(lists.resources).toEqual(SEES.admin.resources);
    expect(lists.templates).toEqual(SEES.admin.templates);
    expect(lists.prompts).toEqual(SEES.admin.prompts);
    expect((await alice.client.readResource({ uri: SAMPLE_SECRET_RESOURCE_URI })).contents[0]).toMatchObject({ text: 'the admin password is hunter2' });
    expect((await alice.client.readResource({ uri: 'todo://item/1' })).contents[0]?.uri).toBe('todo://item/1');
    expect((await alice.client.getPrompt({ name: SAMPLE_INTERNAL_PROMPT_NAME })).messages).toHaveLength(1);
  });

  it('gives principals who differ in a condition their own lists at the same time, and those alike the same', async () => {
    const expected = { alice: SEES.admin, bob: SEES.other, carol: SEES.admin };
    const clients = { alice, bob, carol };
    // Interleaved rounds in changing orders: any list remembered for one principal and served
    // to another shows up as a mismatch.
    for (const order of [['bob', 'alice', 'carol'], ['alice', 'bob', 'carol'], ['carol', 'bob', 'alice']] as const) {
      const rounds = await Promise.all(
        [1, 2, 3].flatMap(() => order.map(async (name) => ({ name, lists: await listsOf(clients[name]) }))),
      );
      for (const { name, lists } of rounds) expect(lists, name).toEqual(expected[name]);
    }
  });
});
