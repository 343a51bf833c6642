import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheLifetimeMs, clientFromDocument, metadataDocumentUrlProblem } from '../../src/authorization-server/cimd.js';
import { FetchRefused, guardedGet } from '../../src/authorization-server/guarded-fetch.js';

const ID = 'https://app.example/oauth/client.json';
const doc = (extra: Record<string, unknown> = {}) => JSON.stringify({ client_id: ID, client_name: 'App', redirect_uris: ['http://127.0.0.1/cb'], ...extra });

describe('Client ID Metadata Documents: the URL and the document', () => {
  it.each([
    [ID, false, undefined],
    ['http://app.example/client.json', false, /https/],
    ['http://127.0.0.1:8080/client.json', true, undefined],
    ['http://10.0.0.1/client.json', true, /https/],
    ['https://app.example/', false, /path/],
    ['https://app.example/a?b=c', false, /query/],
    ['https://app.example/a#b', false, /fragment/],
    ['https://u:p@app.example/a', false, /userinfo/],
    ['https://app.example/a/../b', false, /path segments/],
    ['https://APP.example/a', false, /canonical/],
    ['not a url', false, /not a URL/],
  ])('%s (private networks allowed: %s)', (id, allowPrivate, expected) => {
    const problem = metadataDocumentUrlProblem(id, allowPrivate);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });

  it('a document that names itself, with redirect URIs, describes a public client', () => {
    expect(clientFromDocument(ID, doc({ grant_types: ['authorization_code', 'refresh_token', 'urn:other'] }))).toEqual({
      clientId: ID,
      clientName: 'App',
      redirectUris: ['http://127.0.0.1/cb'],
      grantTypes: ['authorization_code', 'refresh_token'],
      applicationType: 'web',
      registeredBy: 'metadata-document',
    });
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['another client_id', doc({ client_id: 'https://evil.example/c.json' }), /another client_id/],
    ['a secret', doc({ client_secret: 'x' }), /secret/],
    ['private_key_jwt', doc({ token_endpoint_auth_method: 'private_key_jwt' }), /only public clients/],
    ['no redirect URIs', doc({ redirect_uris: [] }), /redirect_uris/],
    ['an http redirect elsewhere', doc({ redirect_uris: ['http://evil.example/cb'] }), /https/],
    ['no code grant', doc({ grant_types: ['client_credentials'] }), /authorization_code/],
  ])('a document with %s is refused', (_, body, why) => {
    expect(clientFromDocument(ID, body)).toMatch(why);
  });

  it('is cached as HTTP caching says (RFC 9111 §5.2.2), bounded to a day, five minutes when silent', () => {
    expect(cacheLifetimeMs(undefined)).toBe(300_000);
    expect(cacheLifetimeMs('public, max-age=60')).toBe(60_000);
    expect(cacheLifetimeMs('max-age=31536000')).toBe(86_400_000);
    expect(cacheLifetimeMs('no-store')).toBe(0);
    expect(cacheLifetimeMs('max-age=600, no-cache')).toBe(0);
  });
});

describe('the guarded fetch', () => {
  let server: Server;
  let base: string;
  let hits = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++;
      if (req.url === '/slow') return void setTimeout(() => res.end('{}'), 2_000);
      if (req.url === '/big') return void res.end('x'.repeat(10_000));
      if (req.url === '/moved') return void res.writeHead(301, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  // A generous deadline where the server answers; the short one only where it is to fire
  // (/slow answers after 2 s).
  const open = { allowPrivateNetworks: true, timeoutMs: 5_000, maxBytes: 5120 };
  const reason = (promise: Promise<unknown>) => promise.then(() => 'fetched', (error: unknown) => (error instanceof FetchRefused ? error.reason : String(error)));

  it('positive control: a small, quick answer is read', async () => {
    expect(await guardedGet(new URL(`${base}/ok`), open)).toMatchObject({ status: 200, body: '{"ok":true}' });
  });

  it('gives up after its timeout, cuts a large body, and does not follow a redirect', async () => {
    expect(await reason(guardedGet(new URL(`${base}/slow`), { ...open, timeoutMs: 500 }))).toBe('timeout');
    expect(await reason(guardedGet(new URL(`${base}/big`), open))).toBe('size');
    expect(await reason(guardedGet(new URL(`${base}/moved`), open))).toBe('redirect');
  });

  it('connects to the address it checked: a name resolving to a private address is refused before any connection', async () => {
    const before = hits;
    const privateName = guardedGet(new URL(`${base.replace('127.0.0.1', 'metadata.internal.test')}/ok`), { ...open, allowPrivateNetworks: false, resolve: async () => [{ address: '10.0.0.7', family: 4 }] });
    expect(await reason(privateName)).toBe('address');
    expect(await reason(guardedGet(new URL(`${base}/ok`), { ...open, allowPrivateNetworks: false }))).toBe('address');
    expect(hits).toBe(before);
  });

  it('a name is resolved once, and the connection goes to that address (no rebinding between check and connect)', async () => {
    let lookups = 0;
    const answer = await guardedGet(new URL(`${base.replace('127.0.0.1', 'rebind.test')}/ok`), {
      ...open,
      resolve: async () => {
        lookups++;
        return [{ address: '127.0.0.1', family: 4 }];
      },
    });
    expect(answer.status).toBe(200);
    expect(lookups).toBe(1);
  });
});
