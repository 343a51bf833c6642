import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import {
  SAMPLE_INTERNAL_PROMPT_ARGUMENT,
  SAMPLE_INTERNAL_PROMPT_COMPLETIONS,
  SAMPLE_INTERNAL_PROMPT_NAME,
  SAMPLE_ITEM_TEMPLATE,
  SAMPLE_ITEM_TEMPLATE_ARGUMENT,
  SAMPLE_PROMPT_ARGUMENT,
  SAMPLE_PROMPT_NAME,
} from '../../dev/upstream.js';
import { mcpRequest, openSession } from '../support/mcp-http.js';
import { connectAuthorizedClient, type AuthorizedClient } from '../support/sdk-client.js';
import { startStack, type Stack } from '../support/stack.js';
import { mcpErrorOf } from '../support/refusals.js';

/**
 * Issue 23 item 2: completion/complete reads what it completes. A completion for a prompt or a
 * resource template the principal may not see would return the values the policy hides, so it
 * is decided as a read of its `ref`: refused as the SDK refuses an unknown prompt or template,
 * and never forwarded (the upstream's request log shows it). The template is hidden from bob by
 * a condition, so the same completion from alice is the positive control.
 */
const POLICY = `
scopes: [todo:read]
tools:
  "*": [todo:read]
resources:
  "todo://list": [todo:read]
  "todo://item/*":
    scopes: [todo:read]
    when: { subjects: [alice] }
prompts:
  ${SAMPLE_PROMPT_NAME}: [todo:read]
  ${SAMPLE_INTERNAL_PROMPT_NAME}: deny
`;

const promptRef = (name: string) => ({ type: 'ref/prompt' as const, name });
const templateRef = (uri: string) => ({ type: 'ref/resource' as const, uri });

describe('completion/complete is decided as a read of its ref (issue 23 item 2)', () => {
  let stack: Stack;
  let alice: AuthorizedClient;
  let bob: AuthorizedClient;
  const completions = () => stack.upstream.requests.filter((record) => record.rpcMethods.includes('completion/complete'));

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'sse', policy: POLICY });
    [alice, bob] = await Promise.all([connectAuthorizedClient(stack.mcpUrl, 'alice'), connectAuthorizedClient(stack.mcpUrl, 'bob')]);
  }, 30_000);
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await stack?.close();
  });

  it('the upstream completes the denied prompt and the template, so a forwarded completion would leak (sanity check)', async () => {
    const direct = new Client({ name: 'direct', version: '1' });
    await direct.connect(new StreamableHTTPClientTransport(new URL(stack.upstream.url)));
    try {
      const internal = await direct.complete({ ref: promptRef(SAMPLE_INTERNAL_PROMPT_NAME), argument: { name: SAMPLE_INTERNAL_PROMPT_ARGUMENT, value: 'sev' } });
      expect(internal.completion.values).toEqual([...SAMPLE_INTERNAL_PROMPT_COMPLETIONS]);
      const items = await direct.complete({ ref: templateRef(SAMPLE_ITEM_TEMPLATE), argument: { name: SAMPLE_ITEM_TEMPLATE_ARGUMENT, value: '' } });
      expect(items.completion.values).toEqual(['1']);
    } finally {
      await direct.close();
    }
  });

  it('answers a completion for a denied or unmatched prompt -32602 Unknown prompt, unforwarded', async () => {
    stack.upstream.clearLog();
    for (const client of [alice, bob]) {
      for (const name of [SAMPLE_INTERNAL_PROMPT_NAME, 'no_such_prompt']) {
        const error = await mcpErrorOf(client.client.complete({ ref: promptRef(name), argument: { name: SAMPLE_INTERNAL_PROMPT_ARGUMENT, value: 'sev' } }));
        expect([error.code, error.message]).toEqual([-32602, `MCP error -32602: Unknown prompt: ${name}`]);
      }
    }
    expect(completions()).toEqual([]);
  });

  it('completes an argument of an allowed prompt, forwarded (positive control)', async () => {
    stack.upstream.clearLog();
    const result = await bob.client.complete({ ref: promptRef(SAMPLE_PROMPT_NAME), argument: { name: SAMPLE_PROMPT_ARGUMENT, value: 'o' } });
    expect(result.completion.values).toEqual(['open']);
    expect(completions().map((record) => record.body)).toMatchObject([{ params: { ref: promptRef(SAMPLE_PROMPT_NAME) } }]);
  });

  it('answers a completion for a resource template hidden from the principal -32602, unforwarded, and does not list the template', async () => {
    stack.upstream.clearLog();
    const error = await mcpErrorOf(bob.client.complete({ ref: templateRef(SAMPLE_ITEM_TEMPLATE), argument: { name: SAMPLE_ITEM_TEMPLATE_ARGUMENT, value: '' } }));
    expect([error.code, error.message]).toEqual([-32602, `MCP error -32602: Resource template not found: ${SAMPLE_ITEM_TEMPLATE}`]);
    // A template no rule matches is hidden from everyone.
    const unmatched = await mcpErrorOf(alice.client.complete({ ref: templateRef('secret://{note}'), argument: { name: 'note', value: '' } }));
    expect([unmatched.code, unmatched.message]).toEqual([-32602, 'MCP error -32602: Resource template not found: secret://{note}']);
    expect(completions()).toEqual([]);
    expect((await bob.client.listResourceTemplates()).resourceTemplates).toEqual([]);
  });

  it('completes the template for the principal it is not hidden from, forwarded, and lists it (positive control)', async () => {
    stack.upstream.clearLog();
    const result = await alice.client.complete({ ref: templateRef(SAMPLE_ITEM_TEMPLATE), argument: { name: SAMPLE_ITEM_TEMPLATE_ARGUMENT, value: '' } });
    expect(result.completion.values).toEqual(['1']);
    expect(completions()).toHaveLength(1);
    expect((await alice.client.listResourceTemplates()).resourceTemplates.map((template) => template.uriTemplate)).toEqual([SAMPLE_ITEM_TEMPLATE]);
  });

  it('refuses a completion for a template spelled other than in normal form -32602 naming why, unforwarded', async () => {
    stack.upstream.clearLog();
    for (const uri of ['todo://item/../item/{id}', 'todo://item/{id} ', 'todo://item/./{id}', 'todo://Item\\{id}']) {
      const error = await mcpErrorOf(alice.client.complete({ ref: templateRef(uri), argument: { name: 'id', value: '' } }));
      expect(error.code, JSON.stringify(uri)).toBe(-32602);
      expect(error.message.startsWith(`MCP error -32602: Invalid params: resource URI ${JSON.stringify(uri)} `)).toBe(true);
    }
    expect(completions()).toEqual([]);
  });

  it('refuses a completion whose ref is malformed, answering its id, unforwarded', async () => {
    const token = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read', subject: 'alice' })).accessToken;
    const sessionId = await openSession(stack.mcpUrl, token);
    stack.upstream.clearLog();
    const malformed: unknown[] = [
      undefined,
      SAMPLE_PROMPT_NAME,
      { type: 'ref/prompt' },
      { type: 'ref/prompt', name: '' },
      { type: 'ref/prompt', name: 7 },
      { type: 'ref/resource', name: SAMPLE_PROMPT_NAME },
      { type: 'ref/tool', name: SAMPLE_INTERNAL_PROMPT_NAME },
      { type: 'REF/PROMPT', name: SAMPLE_INTERNAL_PROMPT_NAME },
      [promptRef(SAMPLE_PROMPT_NAME)],
    ];
    for (const [i, ref] of malformed.entries()) {
      const id = `bad-${i}`;
      const response = await mcpRequest(stack.mcpUrl, { jsonrpc: '2.0', id, method: 'completion/complete', params: { ref, argument: { name: 'x', value: '' } } }, { token, sessionId });
      const body = (await response.json()) as { id: unknown; error?: { code: number; message: string } };
      expect(response.status, JSON.stringify(ref)).toBe(400);
      expect(body.id).toBe(id);
      expect(body.error?.code).toBe(-32600);
      expect(body.error?.message).toContain('completion/complete needs params.ref');
    }
    // The same request with a well-formed ref goes through (positive control).
    const good = await mcpRequest(stack.mcpUrl, { jsonrpc: '2.0', id: 'good', method: 'completion/complete', params: { ref: promptRef(SAMPLE_PROMPT_NAME), argument: { name: SAMPLE_PROMPT_ARGUMENT, value: '' } } }, { token, sessionId });
    expect(good.status).toBe(200);
    expect(await good.text()).toContain('"values":["all","done","open"]');
    expect(completions()).toHaveLength(1);
  });
});
