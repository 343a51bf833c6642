import { readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/as-browser.js';
import { authorizationUrl, CLIENT_REDIRECT, codeOf, pkcePair } from '../support/as-client.js';
import { startAsShared, startAsStack, type AsShared, type AsStack } from '../support/as-stack.js';
import { makeSelfSignedCert } from '../support/hardening-stack.js';

/**
 * Client ID Metadata Documents and their SSRF guard (draft-ietf-oauth-client-id-metadata-document
 * §6.5; MCP authorization 2025-11-25): a client_id URL on loopback is refused unless private
 * networks are allowed (development), whatever name leads there; redirects are not followed; a
 * document must be small and name itself. The same documents with the guard relaxed are the
 * positive control, so each refusal is the guard's doing.
 */
describe('authorization server: client metadata documents', () => {
  let shared: AsShared;
  let guarded: AsStack;
  let relaxed: AsStack;
  let server: Server;
  let base: string;
  const fetched: string[] = [];

  beforeAll(async () => {
    shared = await startAsShared();
    await makeSelfSignedCert(shared.dir);
    const cert = await readFile(join(shared.dir, 'cert.pem'), 'utf8');
    server = createServer({ cert, key: await readFile(join(shared.dir, 'key.pem'), 'utf8') }, (req, res) => {
      fetched.push(req.url ?? '');
      const self = `${base}${req.url}`;
      const doc = { client_id: self, client_name: 'Document client', redirect_uris: [CLIENT_REDIRECT], token_endpoint_auth_method: 'none' };
      if (req.url === '/redirect.json') return void res.writeHead(302, { location: `${base}/good.json` }).end();
      if (req.url === '/large.json') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...doc, padding: 'x'.repeat(6000) }));
      if (req.url === '/other.json') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...doc, client_id: `${base}/good.json` }));
      if (req.url === '/secret.json') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...doc, client_secret: 's3cret' }));
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(doc));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    guarded = await startAsStack({ shared, allowPrivateNetworks: false, gatewayOptions: { metadataDocumentCa: cert } });
    relaxed = await startAsStack({ shared, allowPrivateNetworks: true, gatewayOptions: { metadataDocumentCa: cert } });
  });
  afterAll(async () => {
    await guarded?.close();
    await relaxed?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await shared?.upstream.close();
    await shared?.idp.close();
    if (shared) await rm(shared.dir, { recursive: true, force: true });
  });

  const authorize = async (stack: AsStack, clientId: string) => {
    const { challenge } = pkcePair();
    return (await new TestBrowser({ subject: 'alice' }).authorize(authorizationUrl(stack.gateway.url, { clientId, challenge, resource: stack.mcpUrl }), CLIENT_REDIRECT)).outcome;
  };
  const refusedOnPage = (outcome: Awaited<ReturnType<typeof authorize>>, why: RegExp) => {
    expect(outcome.kind).toBe('page');
    if (outcome.kind === 'page') {
      expect(outcome.html).toContain('<code>invalid_client</code>');
      expect(outcome.html).toMatch(why);
    }
  };

  it('positive control: with private networks allowed, a loopback document is fetched, checked and used', async () => {
    expect(codeOf(await authorize(relaxed, `${base}/good.json`))).toMatch(/^[\w-]{43}$/);
  });

  it.each([
    ['its address', () => `${base}/good.json`],
    ['a name that resolves to loopback', () => `${base.replace('127.0.0.1', 'localhost')}/good.json`],
  ])('a document on loopback, reached by %s, is refused without a request', async (_, id) => {
    const before = fetched.length;
    refusedOnPage(await authorize(guarded, id()), /loopback, private, link-local or reserved/);
    expect(fetched.length).toBe(before);
  });

  it.each([
    ['/redirect.json', /redirects are not followed/],
    ['/large.json', /larger than 5120 bytes/],
    ['/other.json', /names another client_id/],
    ['/secret.json', /must not contain a client secret/],
  ])('%s is refused even where private networks are allowed', async (path, why) => {
    refusedOnPage(await authorize(relaxed, `${base}${path}`), why);
  });

  it.each([
    ['http, not https', () => `${base.replace('https', 'http')}/good.json`, /must be an https URL/],
    ['a query', () => `${base}/good.json?x=1`, /must not have a query/],
    ['a dot segment', () => `${base}/a/../good.json`, /\. or \.\. path segments/],
    ['no path', () => `${base}/`, /must have a path/],
  ])('a client_id URL with %s is refused before any fetch', async (_, id, why) => {
    const before = fetched.length;
    refusedOnPage(await authorize(guarded, id()), why);
    expect(fetched.length).toBe(before);
  });

  it('a document served with no-store is fetched again at each use, not kept', async () => {
    const before = fetched.filter((u) => u === '/good.json').length;
    codeOf(await authorize(relaxed, `${base}/good.json`));
    expect(fetched.filter((u) => u === '/good.json').length).toBe(before + 1);
  });
});
