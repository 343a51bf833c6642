import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import type { Gateway } from '../../src/gateway.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { connectAuthorizedClient } from '../support/sdk-client.js';
import { startSingleRouteGateway } from '../support/single-route-gateway.js';
import { TODO_POLICY } from '../support/stack.js';

/**
 * Opaque access tokens from a real IdP (oidc-provider issuing opaque tokens for the resource),
 * checked by RFC 7662 introspection with client_secret_basic and client_secret_post, driven by
 * the real MCP SDK client through its own OAuth flow, step-up included.
 */
const INTROSPECTION_CLIENTS = [
  { clientId: 'gateway-basic', clientSecret: 'basic secret:1', authMethod: 'client_secret_basic' as const },
  { clientId: 'gateway-post', clientSecret: 'post-secret-2', authMethod: 'client_secret_post' as const },
];

describe('opaque tokens through introspection', () => {
  let idp: DevIdp;
  let upstream: SampleUpstream;
  let dir: string;
  const gateways: Gateway[] = [];

  const start = async (client: (typeof INTROSPECTION_CLIENTS)[number]) => {
    const gateway = await startSingleRouteGateway({
      dir,
      issuerYaml: `{ issuer: "${idp.issuer}", introspection: { clientId: ${client.clientId}, clientSecret: "${client.clientSecret}", authMethod: ${client.authMethod}, negativeCacheTtl: 1s } }`,
      upstreamUrl: upstream.url,
    });
    gateways.push(gateway);
    return gateway;
  };
  const introspections = () => idp.requests.filter((r) => r.method === 'POST' && r.path === '/token/introspection').length;

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: ['todo:read', 'todo:write', 'todo:admin'], accessTokenFormat: 'opaque', introspectionClients: INTROSPECTION_CLIENTS });
    upstream = await startSampleUpstream({ responseMode: 'json', stateless: false });
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-introspection-'));
    await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
  }, 30_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await Promise.all([upstream?.close(), idp?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  for (const client of INTROSPECTION_CLIENTS) {
    it(`the SDK client runs its OAuth flow, lists, calls and steps up with opaque tokens (${client.authMethod})`, async () => {
      const gateway = await start(client);
      const { client: mcp, withAuth } = await connectAuthorizedClient(`${gateway.url}/mcp`);
      try {
        const tools = await mcp.listTools();
        expect(tools.tools.map((t) => t.name)).toContain('list_todos');
        expect(tools.tools.map((t) => t.name)).not.toContain('secret_tool');
        const added = await withAuth(() => mcp.callTool({ name: 'add_todo', arguments: { title: 'opaque' } }));
        expect(JSON.stringify(added)).toContain('opaque');
      } finally {
        await mcp.close();
      }
      expect(introspections()).toBeGreaterThan(0);
    });
  }

  it('is the real thing: the token is opaque, caching spares the IdP, and junk or foreign tokens are refused unforwarded', async () => {
    const gateway = await start(INTROSPECTION_CLIENTS[0]!);
    const mcp = `${gateway.url}/mcp`;
    const { accessToken } = await obtainAccessToken(idp, { resource: mcp, scope: 'todo:read', subject: 'alice' });
    expect(accessToken.split('.')).toHaveLength(1); // not a JWT: only introspection can tell

    const before = introspections();
    const sessionId = await openSession(mcp, accessToken);
    for (let id = 1; id <= 5; id++) {
      const response = await mcpRequest(mcp, toolCall(id, 'list_todos'), { token: accessToken, sessionId });
      expect(response.status).toBe(200);
      await response.text();
    }
    expect(introspections() - before).toBe(1); // seven requests, one introspection

    upstream.clearLog();
    const junk = await mcpRequest(mcp, toolCall(9, 'list_todos'), { token: 'not-a-token-the-idp-issued', sessionId });
    expect(junk.status).toBe(401);
    expect(junk.headers.get('www-authenticate')).toContain('error="invalid_token"');
    await junk.text();

    // A real opaque token for another resource: active, but not bound to this one.
    const other = (await obtainAccessToken(idp, { resource: 'http://127.0.0.1:1/other', scope: 'todo:read', subject: 'alice' })).accessToken;
    const foreign = await mcpRequest(mcp, toolCall(10, 'list_todos'), { token: other });
    expect(foreign.status).toBe(401);
    expect(await foreign.json()).toMatchObject({ error: { message: 'The access token is not for this resource' } });
    expect(upstream.requests).toHaveLength(0);
  });

  it('compares the introspected aud by the same rule as a JWT aud: other spellings of the resource are refused (issue 23)', async () => {
    const gateway = await start(INTROSPECTION_CLIENTS[0]!);
    const mcp = `${gateway.url}/mcp`;
    const port = new URL(gateway.url).port;
    const opaque = async (resource: string) => {
      const { accessToken } = await obtainAccessToken(idp, { resource, scope: 'todo:read', subject: 'alice' });
      expect(accessToken.split('.')).toHaveLength(1);
      return accessToken;
    };
    for (const resource of [`${gateway.url}/other/mcp/../../mcp`, `http://attacker@127.0.0.1:${port}/mcp`, `http://0x7f.1:${port}/mcp`]) {
      upstream.clearLog();
      const response = await mcpRequest(mcp, toolCall(11, 'list_todos'), { token: await opaque(resource) });
      expect(response.status, resource).toBe(401);
      expect(response.headers.get('www-authenticate'), resource).toContain('error="invalid_token"');
      expect(await response.json(), resource).toMatchObject({ error: { message: 'The access token is not for this resource' } });
      expect(upstream.requests, resource).toHaveLength(0);
    }
    // Control: the resource with its scheme in upper case is the same resource.
    const token = await opaque(`HTTP://127.0.0.1:${port}/mcp`);
    const sessionId = await openSession(mcp, token);
    const response = await mcpRequest(mcp, toolCall(12, 'list_todos'), { token, sessionId });
    expect(response.status).toBe(200);
    await response.text();
  });
});
