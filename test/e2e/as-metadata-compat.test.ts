import { discoverOAuthMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../support/stack.js';

/**
 * 2025-03-26 clients look for the authorization server's metadata on the MCP server's own
 * origin. With the opt-in, the gateway redirects them to the issuer's document or serves a copy;
 * the real SDK's legacy discovery (discoverOAuthMetadata) finds the real IdP's metadata in the served copy.
 */
describe('authorization server metadata for 2025-03-26 clients', () => {
  const stacks: Stack[] = [];
  let served: Stack;
  let redirected: Stack;
  let plain: Stack;

  beforeAll(async () => {
    [served, redirected, plain] = await Promise.all([
      startStack({ responseMode: 'json', extraConfig: 'authorizationServerMetadata: { mode: serve }' }),
      startStack({ responseMode: 'json', extraConfig: 'authorizationServerMetadata: { mode: redirect }' }),
      startStack({ responseMode: 'json' }),
    ]);
    stacks.push(served, redirected, plain);
  }, 30_000);
  afterAll(() => Promise.all(stacks.map((s) => s.close())));

  const idpMetadata = async (stack: Stack) => (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json() as Promise<Record<string, unknown>>;

  it('serve: a copy of the issuer metadata at the gateway origin, CORS-readable', async () => {
    const response = await fetch(`${served.gateway.url}/.well-known/oauth-authorization-server`, { headers: { origin: 'https://app.example' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    const body = (await response.json()) as Record<string, unknown>;
    const original = await idpMetadata(served);
    expect(body.issuer).toBe(served.idp.issuer);
    expect(body.token_endpoint).toBe(original.token_endpoint);
    expect(body.registration_endpoint).toBe(original.registration_endpoint);
  });

  it("redirect: 302 to where the issuer publishes it", async () => {
    const response = await fetch(`${redirected.gateway.url}/.well-known/oauth-authorization-server`, { redirect: 'manual' });
    expect(response.status).toBe(302);
    const location = response.headers.get('location')!;
    expect(location.startsWith(`${redirected.idp.issuer}/.well-known/`)).toBe(true);
    expect(((await (await fetch(location)).json()) as { issuer: string }).issuer).toBe(redirected.idp.issuer);
  });

  it("the SDK's legacy discovery finds the IdP through a served copy, and nothing without the opt-in", async () => {
    const metadata = await discoverOAuthMetadata(served.gateway.url, { protocolVersion: '2025-03-26' });
    expect(metadata?.issuer).toBe(served.idp.issuer);
    expect(metadata?.authorization_endpoint).toBe((await idpMetadata(served)).authorization_endpoint);
    expect(await discoverOAuthMetadata(plain.gateway.url, { protocolVersion: '2025-03-26' })).toBeUndefined();
  });

  it('the SDK follows redirects only within an origin, so redirect mode is for clients that follow (serve is for the SDK)', async () => {
    await expect(discoverOAuthMetadata(redirected.gateway.url, { protocolVersion: '2025-03-26' })).rejects.toThrow(/HTTP 302/);
  });
});
