import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * routes[].stepUp: for clients known not to re-authorise, a call needing more scopes is answered
 * with a JSON-RPC error naming them instead of the 403 challenge (real IdP, real SDK upstream).
 */
describe.each([
  { label: 'every client', stepUp: '{ answer: error }', errorAnswer: true },
  { label: 'only listed clients (this one is not)', stepUp: '{ answer: error, clients: [legacy-agent] }', errorAnswer: false },
])('stepUp answered as an error, for $label', ({ stepUp, errorAnswer }) => {
  let stack: Stack;
  let reader: string;

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'json', routeConfig: `    stepUp: ${stepUp}` });
    reader = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read' })).accessToken;
  }, 30_000);
  afterAll(() => stack?.close());

  it('keeps the challenge for a token without the route scopes: there is no request id to answer yet', async () => {
    const outsider = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'other:scope' })).accessToken;
    stack.upstream.clearLog();
    const response = await mcpRequest(stack.mcpUrl, toolCall(6, 'list_todos'), { token: outsider });
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    await response.text();
    expect(stack.upstream.requests).toHaveLength(0);
  });

  it('names every scope the call needs, and forwards nothing', async () => {
    const sessionId = await openSession(stack.mcpUrl, reader);
    stack.upstream.clearLog();
    const response = await mcpRequest(stack.mcpUrl, toolCall(5, 'add_todo', { title: 'x' }), { token: reader, sessionId });
    const body = await response.json();
    expect(stack.upstream.requests).toHaveLength(0);
    if (errorAnswer) {
      expect(response.status).toBe(200);
      expect(response.headers.get('www-authenticate')).toBeNull();
      expect(body).toEqual({
        jsonrpc: '2.0',
        id: 5,
        error: {
          code: -32001,
          message: 'Insufficient scope: this request needs todo:write',
          data: {
            error: 'insufficient_scope',
            scope: 'todo:read todo:write',
            missing_scopes: ['todo:write'],
            resource_metadata: `${stack.gateway.publicUrl}/.well-known/oauth-protected-resource/mcp`,
          },
        },
      });
    } else {
      expect(response.status).toBe(403);
      expect(response.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
      expect(response.headers.get('www-authenticate')).toContain('scope="todo:read todo:write"');
    }
  });
});
