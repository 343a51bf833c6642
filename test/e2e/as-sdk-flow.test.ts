import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/as-browser.js';
import { AsHostProvider, connectHost, type HostSession } from '../support/as-sdk-client.js';
import { startAsShared, startAsStack, type AsShared, type AsStack } from '../support/as-stack.js';
import { makeSelfSignedCert } from '../support/hardening-stack.js';

/**
 * Issue 25, end to end: the real MCP SDK client, knowing nothing but the MCP authorization spec,
 * meets a gateway that is its own authorization server in front of an IdP with a single
 * confidential client (the dev IdP's registration is never used). Once registering by RFC 7591,
 * once by a Client ID Metadata Document on loopback https: discovery, registration, the IdP
 * login, the gateway's consent page, the token, tools/list, a step-up that keeps the held scope,
 * and a refresh.
 */
describe.each(['dynamic registration', 'metadata document'] as const)('SDK client against the gateway as authorization server (%s)', (registration) => {
  let shared: AsShared;
  let stack: AsStack;
  let host: HostSession;
  let documentServer: ReturnType<typeof createServer> | undefined;
  let documentUrl: string | undefined;
  let documentFetches = 0;

  beforeAll(async () => {
    shared = await startAsShared();
    let ca: string | undefined;
    if (registration === 'metadata document') {
      await makeSelfSignedCert(shared.dir);
      ca = await readFile(join(shared.dir, 'cert.pem'), 'utf8');
      documentServer = createServer({ cert: ca, key: await readFile(join(shared.dir, 'key.pem'), 'utf8') }, (req, res) => {
        documentFetches++;
        res.writeHead(req.url === '/clients/host.json' ? 200 : 404, { 'content-type': 'application/json', 'cache-control': 'max-age=600' });
        res.end(JSON.stringify(document()));
      });
      await new Promise<void>((resolve) => documentServer!.listen(0, '127.0.0.1', resolve));
      documentUrl = `https://127.0.0.1:${(documentServer.address() as AddressInfo).port}/clients/host.json`;
    }
    stack = await startAsStack({ shared, ...(ca ? { gatewayOptions: { metadataDocumentCa: ca } } : {}) });
    const provider = new AsHostProvider(new TestBrowser({ subject: 'alice' }), documentUrl);
    host = await connectHost(stack.mcpUrl, provider);
  });
  afterAll(async () => {
    await host?.close();
    await stack?.close();
    documentServer?.closeAllConnections();
    await new Promise((resolve) => (documentServer ? documentServer.close(resolve) : resolve(undefined)));
    await shared?.close();
  });

  const document = () => ({
    client_id: documentUrl,
    client_name: 'SDK host from its metadata document',
    redirect_uris: ['http://127.0.0.1:7778/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  });

  it('registers as the spec says, is asked for consent, and gets a token for this route from the gateway', () => {
    const { provider } = host;
    expect(provider.consentShown).toEqual([true]);
    expect(provider.requestedScopes).toEqual(['todo:read']);
    const claims = decodeJwt(provider.tokenHistory[0]!.access_token);
    expect(claims).toMatchObject({ iss: stack.gateway.url, aud: stack.mcpUrl, sub: 'idp|alice', scope: 'todo:read' });
    const clientId = provider.clientInformation()!.client_id;
    if (registration === 'metadata document') {
      expect(clientId).toBe(documentUrl);
      expect(documentFetches).toBe(1);
    } else expect(clientId).toMatch(/^[\w-]{24}$/);
    expect(claims.client_id).toBe(clientId);
    // Nothing was registered at the IdP: the gateway logged in there as its one static client.
    expect(stack.idp.requests.filter((r) => r.path === '/reg')).toEqual([]);
  });

  it('lists tools through the gateway with that token', async () => {
    const { tools } = await host.withAuth(() => host.client.listTools());
    expect(tools.map((t) => t.name)).toContain('list_todos');
  });

  it('steps up: a tool that needs todo:write brings a new authorization, with consent for the new scope, and the held scope stays', async () => {
    const result = await host.withAuth(() => host.client.callTool({ name: 'add_todo', arguments: { title: 'from the AS e2e' } }));
    expect(result.isError).toBeFalsy();
    expect(host.provider.consentShown).toEqual([true, true]);
    // The client asked for what the challenge named; the gateway kept what was held besides.
    expect(host.provider.requestedScopes[1]).toContain('todo:write');
    const scopes = String(decodeJwt(host.provider.tokens()!.access_token).scope).split(' ').sort();
    expect(scopes).toEqual(['todo:read', 'todo:write']);
  });

  it('refreshes when its access token is refused, with the scopes held and no consent asked', async () => {
    const before = host.provider.tokens()!;
    host.provider.spoilAccessToken();
    const { tools } = await host.withAuth(() => host.client.listTools());
    expect(tools.length).toBeGreaterThan(0);
    const after = host.provider.tokens()!;
    expect(after.refresh_token).toBeDefined();
    expect(after.refresh_token).not.toBe(before.refresh_token);
    expect(String(decodeJwt(after.access_token).scope).split(' ').sort()).toEqual(['todo:read', 'todo:write']);
    expect(host.provider.consentShown).toEqual([true, true]);
    expect(host.provider.requestedScopes).toHaveLength(2);
  });
});
