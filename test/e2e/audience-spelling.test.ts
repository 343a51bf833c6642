import { randomUUID } from 'node:crypto';
import { decodeJwt, SignJWT, type JWTHeaderParameters } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { startAttackStack, type AttackStack } from '../support/attack-stack.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { startRouteGateway, type RouteGateway } from '../support/route-gateway.js';

/**
 * Issue 23, item 4: tokens the real IdP issued for other spellings of the resource URL. The
 * gateway compares `aud` with the route's resource by the documented rule only (scheme and host
 * case-insensitively, the default port dropped), so a token for `…/other/mcp/../../mcp`, for
 * `http://attacker@127.0.0.1:P/mcp` or for `http://0x7f.1:P/mcp` gets 401 `invalid_token` and
 * nothing reaches the upstream, while the exact resource, and the spellings the rule accepts,
 * pass.
 *
 * The dev IdP (oidc-provider) takes any absolute URI without a fragment as an RFC 8707 resource
 * indicator and puts it into `aud` exactly as requested (checked below for every token), so
 * every spelling but the fragment one is a real token from the IdP; that one is minted here with
 * the IdP's own signing key.
 *
 * Two gateways trust the IdP: the attack stack's, whose resource is `http://127.0.0.1:P/mcp`
 * (no letters in the host, not the default port), and `named`, with `publicUrl:
 * http://localhost`, whose resource `http://localhost/mcp` has a host to write in upper case and
 * a default port to write out.
 */
type Method = 'POST' | 'GET' | 'DELETE';
const NOT_FOR_THIS_RESOURCE = 'The access token is not for this resource';

describe('audience spellings (issue 23)', () => {
  let stack: AttackStack;
  let named: RouteGateway;
  /** http://127.0.0.1:P: the attack stack's gateway, and the origin of its resource. */
  let origin: string;
  let port: string;
  /** A real session of alice's on each gateway; every refused request names it. */
  const sessions = new Map<string, string>();

  const namedUrl = () => `${named.gateway.url}/mcp`;

  beforeAll(async () => {
    stack = await startAttackStack();
    named = await startRouteGateway({ issuer: stack.idp.issuer, upstreamUrl: stack.upstream.url, head: 'publicUrl: "http://localhost"' });
    origin = stack.gateway.url;
    port = new URL(origin).port;
    for (const [url, resource] of [[stack.mcpUrl, stack.mcpUrl], [namedUrl(), 'http://localhost/mcp']] as const) {
      sessions.set(url, await openSession(url, await tokenFor(resource)));
    }
  }, 60_000);
  afterAll(async () => {
    await named?.close();
    await stack?.close();
  });
  beforeEach(() => stack.upstream.clearLog());

  /** A real access token from the IdP for `resource`, whose `aud` is exactly that spelling. */
  async function tokenFor(resource: string): Promise<string> {
    const { accessToken } = await obtainAccessToken(stack.idp, { resource, scope: 'todo:read' });
    expect(decodeJwt(accessToken).aud, 'the IdP kept the spelling').toBe(resource);
    return accessToken;
  }

  /** 401 invalid_token for the audience on POST (a tool call), GET and DELETE, with nothing upstream. */
  async function expectNotForThisResource(url: string, token: string): Promise<void> {
    for (const method of ['POST', 'GET', 'DELETE'] as Method[]) {
      stack.upstream.clearLog();
      const response = await mcpRequest(url, toolCall(7, 'list_todos'), { token, method, sessionId: sessions.get(url)! });
      expect(response.status, `${method}: status`).toBe(401);
      expect(response.headers.get('www-authenticate'), `${method}: challenge`).toMatch(/^Bearer error="invalid_token", error_description="The access token is not for this resource"/);
      expect(await response.json(), `${method}: body`).toMatchObject({ error: { code: -32001, message: NOT_FOR_THIS_RESOURCE } });
      expect(stack.upstream.requests, `${method}: reached the upstream`).toEqual([]);
    }
  }

  /** The token opens a session and calls a tool: 200, and the call reached the upstream. */
  async function expectAccepted(url: string, token: string): Promise<void> {
    const sessionId = await openSession(url, token);
    stack.upstream.clearLog();
    const response = await mcpRequest(url, toolCall(8, 'list_todos'), { token, sessionId });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { result?: unknown }).result).toMatchObject({ content: [{ type: 'text', text: expect.any(String) }] });
    expect(stack.upstream.requests.map((request) => request.toolNames)).toEqual([['list_todos']]);
  }

  describe('controls: accepted', () => {
    it('a token for the exact resource', async () => {
      await expectAccepted(stack.mcpUrl, await tokenFor(stack.mcpUrl));
      await expectAccepted(namedUrl(), await tokenFor('http://localhost/mcp'));
    });

    it('a token for the resource with the scheme in upper case', async () => {
      await expectAccepted(stack.mcpUrl, await tokenFor(`HTTP://127.0.0.1:${port}/mcp`));
    });

    it('a token for the resource with the host in upper case and the default port written out', async () => {
      await expectAccepted(namedUrl(), await tokenFor('HTTP://LocalHost:80/mcp'));
      await expectAccepted(namedUrl(), await tokenFor('http://LOCALHOST/mcp'));
      await expectAccepted(namedUrl(), await tokenFor('http://localhost:80/mcp'));
    });
  });

  describe('refused: 401 invalid_token, nothing upstream', () => {
    it.each([
      ['dot segments (the issue)', () => `${origin}/other/mcp/../../mcp`],
      ['userinfo (the issue)', () => `http://attacker@127.0.0.1:${port}/mcp`],
      ['a hexadecimal, shortened IPv4 host (the issue)', () => `http://0x7f.1:${port}/mcp`],
      ['IPv4 as one number', () => `http://2130706433:${port}/mcp`],
      ['shortened IPv4', () => `http://127.1:${port}/mcp`],
      ['a dot segment', () => `${origin}/./mcp`],
      ['a percent-encoded letter', () => `${origin}/%6dcp`],
      ['a trailing slash', () => `${origin}/mcp/`],
      ['a backslash', () => `${origin}\\mcp`],
      ['an empty query', () => `${origin}/mcp?`],
    ])('a token the IdP issued for %s', async (_name, resource) => {
      await expectNotForThisResource(stack.mcpUrl, await tokenFor(resource()));
    });

    it.each([
      ['userinfo', 'http://attacker@localhost/mcp'],
      ['the resource as userinfo', 'http://localhost@localhost/mcp'],
      ['a dot-dot segment', 'http://localhost/x/../mcp'],
      ['an empty port', 'http://localhost:/mcp'],
      ['the default port with a leading zero', 'http://localhost:080/mcp'],
      ['a trailing dot in the host', 'http://localhost./mcp'],
      ['the path in upper case', 'http://localhost/MCP'],
    ])('on a named host: a token the IdP issued for %s', async (_name, resource) => {
      await expectNotForThisResource(namedUrl(), await tokenFor(resource));
    });

    it('a token with a fragment in aud (the IdP refuses to issue one), minted with its signing key', async () => {
      await expect(obtainAccessToken(stack.idp, { resource: `${stack.mcpUrl}#x`, scope: 'todo:read' })).rejects.toThrow(/fragment/);
      const mint = (aud: string | string[]) => {
        const signing = stack.idp.signingKey;
        const now = Math.floor(Date.now() / 1000);
        return new SignJWT({ iss: stack.idp.issuer, sub: 'alice', aud, scope: 'todo:read', client_id: 'audience-spelling', iat: now, exp: now + 600, jti: randomUUID() })
          .setProtectedHeader({ alg: signing.alg, typ: 'at+jwt', kid: signing.kid } as JWTHeaderParameters)
          .sign(signing.privateKey);
      };
      await expectAccepted(stack.mcpUrl, await mint(stack.mcpUrl)); // control: the same token with the exact aud
      await expectNotForThisResource(stack.mcpUrl, await mint(`${stack.mcpUrl}#x`));
      // Every spelling of the issue at once, in an aud array: none of them is this resource.
      await expectNotForThisResource(stack.mcpUrl, await mint([`${origin}/other/mcp/../../mcp`, `http://attacker@127.0.0.1:${port}/mcp`, `http://0x7f.1:${port}/mcp`]));
    });
  });

  it("afterwards: alice's sessions survived every refused GET and DELETE", async () => {
    for (const [url, resource] of [[stack.mcpUrl, stack.mcpUrl], [namedUrl(), 'http://localhost/mcp']] as const) {
      const response = await mcpRequest(url, toolCall(9, 'list_todos'), { token: await tokenFor(resource), sessionId: sessions.get(url)! });
      expect(response.status).toBe(200);
      await response.text();
    }
  });
});
