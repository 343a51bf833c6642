/**
 * `npm run demo:facade` (dev/demo-facade.ts): the gateway as authorization server in front of
 * an IdP like Entra ID, which registers no client. These tests start the same pieces on free
 * ports and run every printed command as printed: curl's as fetch, the MCP Inspector's own OAuth
 * flow as the MCP SDK client running it (registration at the gateway, the IdP's login, the
 * gateway's consent page, tools/list), through a browser stand-in that clicks Allow.
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFacadeDemo, type FacadeDemo } from '../../dev/demo-facade.js';
import { DEMO_USER } from '../../dev/demo-stack.js';
import { loadConfig } from '../../src/config/load.js';
import { TestBrowser } from '../support/as-browser.js';
import { AsHostProvider, connectHost } from '../support/as-sdk-client.js';
import { inspectorRun, parseInstructions, runCurl, type Printed } from '../support/demo-instructions.js';
import { captureLogs } from '../support/log-capture.js';

const toolNames = (result: { tools: { name: string }[] }) => result.tools.map((t) => t.name);

describe('npm run demo:facade: the printed commands', () => {
  let demo: FacadeDemo;
  let printed: Printed;
  const curls = () => printed.commands.filter((c) => c.words[0] === 'curl');
  const inspectorRuns = () => printed.commands.filter((c) => c.words[0] === 'npx').map((c) => ({ ...c, run: inspectorRun(c.words) }));

  beforeAll(async () => {
    demo = await startFacadeDemo(await loadConfig('gateway.facade.example.yaml'), { ports: 'ephemeral', logger: captureLogs().logger });
    printed = parseInstructions(demo.instructions);
  });
  afterAll(async () => {
    await demo?.close();
  });

  it('name the running IdP and gateway in every command', () => {
    expect(printed.commands.map((c) => c.words[0])).toEqual(['curl', 'curl', 'npx', 'npx', 'curl']);
    expect(curls().map((c) => c.words.find((w) => w.startsWith('http')))).toEqual([
      `${demo.idp.issuer}/.well-known/openid-configuration`,
      `${demo.issuer}/.well-known/oauth-authorization-server`,
      `${demo.issuer}/oauth/register`,
    ]);
    for (const { run } of inspectorRuns()) {
      expect(run.url).toBe(demo.resource);
      expect(run.transport).toBe('http');
      expect(run.headers).toEqual({});
    }
    expect(inspectorRuns().map(({ run }) => run.cli)).toEqual([false, true]);
    expect(demo.instructions).toContain(`logs everyone in as ${DEMO_USER}`);
  });

  it("the IdP's metadata names no registration endpoint; the gateway's names one and takes metadata documents", async () => {
    const [idpMetadata, gatewayMetadata] = curls();
    expect(idpMetadata!.said).toContain('no registration endpoint');
    const idp = (await (await runCurl(idpMetadata!.words)).json()) as Record<string, unknown>;
    expect(idp.issuer).toBe(demo.idp.issuer);
    expect(idp.registration_endpoint).toBeUndefined();
    const gateway = (await (await runCurl(gatewayMetadata!.words)).json()) as Record<string, unknown>;
    expect(gateway).toMatchObject({ issuer: demo.issuer, registration_endpoint: `${demo.issuer}/oauth/register`, client_id_metadata_document_supported: true, code_challenge_methods_supported: ['S256'] });
  });

  it('the registration command registers a client with the gateway (201, a client id); the IdP has nowhere to send it', async () => {
    const register = curls()[2]!;
    const response = await runCurl(register.words);
    expect(response.status).toBe(201);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.client_id).toMatch(/^[\w-]{24}$/);
    expect(body.redirect_uris).toEqual(['http://127.0.0.1:6274/oauth/callback']);
    // Control: the same registration at the IdP's oidc-provider registration path is not served.
    const atIdp = await runCurl(register.words.map((w) => (w === `${demo.issuer}/oauth/register` ? `${demo.idp.issuer}/reg` : w)));
    expect(atIdp.status).toBe(404);
  });

  it("the Inspector's own flow: registers with the gateway, logs in at the IdP, is asked for consent, and lists the tools", async () => {
    // The Inspector sends no login_hint: the IdP logs in its default user.
    const provider = new AsHostProvider(new TestBrowser());
    const host = await connectHost(inspectorRuns()[0]!.run.url, provider);
    try {
      await host.client.setLoggingLevel('debug');
      const tools = toolNames(await host.withAuth(() => host.client.listTools()));
      expect(tools).toEqual(expect.arrayContaining(['list_todos', 'add_todo', 'admin_stats']));
      expect(tools).not.toContain('secret_tool');
      expect(provider.consentShown).toEqual([true]);
      const clientId = provider.clientInformation()!.client_id;
      const claims = decodeJwt(provider.tokens()!.access_token);
      // The gateway's own token, for this route, naming the Entra user by oid and the client it registered.
      expect(claims).toMatchObject({ iss: demo.issuer, aud: demo.resource, sub: `entra|${demo.idp.entra!.claimsOf(DEMO_USER).oid}`, client_id: clientId, scope: 'todo:read' });
      expect(clientId).not.toBe('mcp-gateway');
    } finally {
      await host.close();
    }
  });

  describe('todo:admin comes from the groups claim at login', () => {
    const stepUpToAdmin = async () => {
      const provider = new AsHostProvider(new TestBrowser());
      const host = await connectHost(demo.resource, provider);
      try {
        const result = await host.withAuth(() => host.client.callTool({ name: 'admin_stats', arguments: {} })).catch((error: unknown) => error);
        return { result, provider, scopes: String(decodeJwt(provider.tokens()!.access_token).scope).split(' ').sort() };
      } finally {
        await host.close();
      }
    };

    it(`${DEMO_USER}, in ops, steps up to it after a consent for the new scope, and calls an admin tool`, async () => {
      const { result, provider, scopes } = await stepUpToAdmin();
      expect(result).not.toBeInstanceOf(Error);
      expect((result as { isError?: boolean }).isError).toBeFalsy();
      expect(provider.consentShown).toEqual([true, true]);
      expect(scopes).toContain('todo:admin');
    });

    it('someone outside ops asks for it in vain: the call stays refused (the control)', async () => {
      demo.idp.loginAs('not-in-ops');
      try {
        const { result, provider, scopes } = await stepUpToAdmin();
        // It did ask (a new authorization naming todo:admin) and got what its claims allow.
        expect(provider.requestedScopes.at(-1)).toContain('todo:admin');
        expect(scopes).not.toContain('todo:admin');
        expect(String(result)).toMatch(/403/);
      } finally {
        demo.idp.loginAs(undefined);
      }
    });
  });
});
