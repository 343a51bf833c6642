import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { resolve } from 'node:path';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream, type UpstreamRequestRecord } from '../../dev/upstream.js';
import { configProblems, minimalConfig } from '../support/config-fixtures.js';
import { initializeRequest, PROTOCOL_VERSION } from '../support/mcp-http.js';
import { startRouteGateway, type RouteGateway } from '../support/route-gateway.js';
import { IDP_SCOPES } from '../support/stack.js';

/**
 * Issue 6, items 4 and 5, end to end: a real IdP's token, the gateway, and a real SDK upstream
 * whose request log is the witness. The upstream learns who is calling only from the gateway
 * (subject, client, scopes, issuer, and a gateway-signed JWT it can verify), and where the
 * request came from only as far as trusted proxies vouch for it. Whatever a client sends under
 * those names, however spelled, never reaches it.
 */

const JWKS_PATH = '/.well-known/mcp-auth-gateway/jwks.json';

const IDENTITY_ROUTE = [
  '    forwardHeaders: [x-tenant]',
  '    identityHeaders: { subject: x-mcp-subject, client: x-mcp-client-id, scopes: x-mcp-scopes, issuer: x-mcp-issuer, token: x-mcp-identity }',
].join('\n');

/** What a client (or a proxy in front of it) might send to pass for someone else, or somewhere else. */
const SPOOFED: Record<string, string> = {
  'x-mcp-subject': 'admin',
  'x-mcp-client-id': 'trusted-agent',
  'x-mcp-scopes': 'todo:admin',
  'x-mcp-issuer': 'https://evil.example',
  'x-mcp-identity': 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.',
  x_mcp_subject: 'admin',
  'x-forwarded-for': '203.0.113.7',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-proto': 'https',
  'x-forwarded-port': '443',
  'x-forwarded-user': 'admin',
  'x-real-ip': '203.0.113.7',
  forwarded: 'for=203.0.113.7;proto=https;host=evil.example',
  'true-client-ip': '203.0.113.7',
  'x-request-id': 'client-chosen-id',
};

/** Every header the upstream may receive on an authorised POST through the identity route. */
const EXPECTED_POST_HEADERS = [
  'accept', 'connection', 'content-length', 'content-type', 'host', 'mcp-protocol-version', 'user-agent',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id',
  'x-mcp-client-id', 'x-mcp-identity', 'x-mcp-issuer', 'x-mcp-scopes', 'x-mcp-subject',
  'x-tenant',
].sort();

const post = (url: string, token: string | undefined, headers: Record<string, string> = {}, body: unknown = initializeRequest()) =>
  fetch(url, {
    method: 'POST',
    headers: {
      ...headers,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': PROTOCOL_VERSION,
    },
    body: JSON.stringify(body),
  });

/** A raw request whose headers go out exactly as listed: repeated names and any spelling. */
function rawPost(url: string, headers: readonly (readonly [string, string])[], body: string): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  const target = new URL(url);
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: [['Host', target.host], ...headers, ['Content-Length', String(Buffer.byteLength(body))]].flat(),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function fetchJwks(baseUrl: string): Promise<JSONWebKeySet> {
  const response = await fetch(`${baseUrl}${JWKS_PATH}`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('application/json');
  return (await response.json()) as JSONWebKeySet;
}

describe('identity and forwarding headers to the upstream', () => {
  let idp: DevIdp;
  let upstream: SampleUpstream;
  /** Trusts proxies, but not the loopback the test's client connects from. */
  let gw: RouteGateway;
  /** Trusts 127.0.0.1: the test's client plays a proxy. */
  let proxied: RouteGateway;
  let upstreamOrigin: string;

  const tokenFor = async (target: RouteGateway, subject: string, scope = 'todo:read todo:write') =>
    obtainAccessToken(idp, { resource: target.mcpUrl, scope, subject });

  /** The one request the upstream received since the log was cleared. */
  const onlyForwarded = (): UpstreamRequestRecord => {
    expect(upstream.requests).toHaveLength(1);
    return upstream.requests[0]!;
  };

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: IDP_SCOPES, signingAlg: 'ES256' });
    upstream = await startSampleUpstream({ responseMode: 'json' });
    upstreamOrigin = new URL(upstream.url).origin;
    gw = await startRouteGateway({
      issuer: idp.issuer,
      upstreamUrl: upstream.url,
      head: ['trustedProxies: ["10.0.0.0/8", "::1"]', 'identityToken: { algorithm: ES256, ttl: 60s }', 'admin: { listen: { port: 0 } }'].join('\n'),
      routeExtra: IDENTITY_ROUTE,
    });
    proxied = await startRouteGateway({
      issuer: idp.issuer,
      upstreamUrl: upstream.url,
      head: ['trustedProxies: ["127.0.0.1"]', 'identityToken: { algorithm: RS256, ttl: 30s }'].join('\n'),
      routeExtra: IDENTITY_ROUTE,
    });
  });
  afterAll(async () => {
    await proxied?.close();
    await gw?.close();
    await upstream?.close();
    await idp?.close();
  });
  beforeEach(() => upstream.clearLog());

  describe('from a client that is not a trusted proxy', () => {
    it("sends the upstream the gateway's identity and forwarding headers only, never the client's copies", async () => {
      const alice = await tokenFor(gw, 'alice');
      const response = await post(gw.mcpUrl, alice.accessToken, { ...SPOOFED, 'x-tenant': 'acme' });
      expect(response.status).toBe(200);
      await response.text();
      const { headers } = onlyForwarded();
      expect(Object.keys(headers).sort()).toEqual(EXPECTED_POST_HEADERS);
      expect(headers).toMatchObject({
        'x-mcp-subject': 'alice',
        'x-mcp-client-id': alice.clientId,
        'x-mcp-scopes': String(decodeJwt(alice.accessToken).scope),
        'x-mcp-issuer': idp.issuer,
        'x-forwarded-for': '127.0.0.1',
        'x-forwarded-proto': 'http',
        'x-forwarded-host': new URL(gw.gateway.url).host,
        'x-request-id': response.headers.get('x-request-id'),
        'x-tenant': 'acme',
      });
      expect(String(headers['x-mcp-scopes']).split(' ').sort()).toEqual(['todo:read', 'todo:write']);
      expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(headers['x-mcp-identity']).not.toBe(SPOOFED['x-mcp-identity']);
      expect(JSON.stringify(headers)).not.toContain(alice.accessToken);
    });

    it('signs an identity token the upstream verifies with the JWKS the gateway publishes', async () => {
      const alice = await tokenFor(gw, 'alice');
      const response = await post(gw.mcpUrl, alice.accessToken, SPOOFED);
      expect(response.status).toBe(200);
      const identity = String(onlyForwarded().headers['x-mcp-identity']);

      const jwks = await fetchJwks(gw.gateway.url);
      expect(jwks.keys).toHaveLength(1);
      expect(Object.keys(jwks.keys[0]!).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
      const { payload, protectedHeader } = await jwtVerify(identity, createLocalJWKSet(jwks), {
        issuer: gw.gateway.publicUrl,
        audience: upstreamOrigin,
        algorithms: ['ES256'],
        typ: 'JWT',
      });
      expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'JWT', kid: jwks.keys[0]!.kid });
      const client = decodeJwt(alice.accessToken);
      expect(payload).toEqual({
        iss: gw.gateway.publicUrl,
        aud: upstreamOrigin,
        sub: 'alice',
        client_id: alice.clientId,
        scope: client.scope,
        token_iss: idp.issuer,
        iat: expect.any(Number),
        exp: payload.iat! + 60,
      });
      expect(payload.exp).toBeLessThanOrEqual(client.exp!);
      expect(Math.abs(payload.iat! - Date.now() / 1000)).toBeLessThan(5);
    });

    it('reuses one identity token per principal, and signs each principal its own', async () => {
      const alice = await tokenFor(gw, 'alice');
      const bob = await tokenFor(gw, 'bob');
      for (const bearer of [alice.accessToken, alice.accessToken, bob.accessToken]) {
        const response = await post(gw.mcpUrl, bearer, {}, { jsonrpc: '2.0', id: 1, method: 'ping' });
        await response.text();
      }
      const [first, second, third] = upstream.requests.map((record) => String(record.headers['x-mcp-identity']));
      expect(second).toBe(first);
      expect(third).not.toBe(first);
      expect(decodeJwt(first!).sub).toBe('alice');
      expect(decodeJwt(third!).sub).toBe('bob');
      expect(upstream.requests.map((record) => record.headers['x-mcp-subject'])).toEqual(['alice', 'alice', 'bob']);
    });

    it('percent-encodes a claim that is not plain visible ASCII: it can neither split a header nor pass for another subject', async () => {
      const cases = [
        ['alice\r\nx-mcp-subject: admin', 'alice%0D%0Ax-mcp-subject%3A%20admin'],
        // Sent raw, HTTP would trim it to "bob", another subject.
        ['bob ', 'bob%20'],
        ['zoë', 'zo%C3%AB'],
        ['100%', '100%25'],
      ] as const;
      for (const [subject, expected] of cases) {
        upstream.clearLog();
        const { accessToken } = await tokenFor(gw, subject);
        expect(decodeJwt(accessToken).sub).toBe(subject);
        const response = await post(gw.mcpUrl, accessToken, SPOOFED);
        expect(response.status).toBe(200);
        const { headers } = onlyForwarded();
        expect(Object.keys(headers).sort()).toEqual(EXPECTED_POST_HEADERS.filter((name) => name !== 'x-tenant'));
        expect(headers['x-mcp-subject']).toBe(expected);
        expect(decodeURIComponent(String(headers['x-mcp-subject']))).toBe(subject);
        // The signed token carries the claim as it is.
        expect(decodeJwt(String(headers['x-mcp-identity'])).sub).toBe(subject);
      }
    });

    it('drops identity and forwarding headers whatever their spelling or repetition', async () => {
      const { accessToken } = await tokenFor(gw, 'alice');
      const response = await rawPost(
        gw.mcpUrl,
        [
          ['Authorization', `Bearer ${accessToken}`],
          ['Content-Type', 'application/json'],
          ['Accept', 'application/json, text/event-stream'],
          ['MCP-Protocol-Version', PROTOCOL_VERSION],
          ['User-Agent', 'raw-test'],
          ['X-MCP-Subject', 'admin'],
          ['x-mcp-subject', 'root'],
          ['X-Mcp-Identity', 'forged'],
          ['X-Forwarded-For', '198.51.100.1'],
          ['x-forwarded-for', '198.51.100.2'],
          ['X-Request-ID', 'one'],
          ['x-request-id', 'two'],
          ['Forwarded', 'for=198.51.100.3'],
          ['X-Real-IP', '198.51.100.4'],
        ],
        JSON.stringify(initializeRequest()),
      );
      expect(response.status).toBe(200);
      const { headers } = onlyForwarded();
      expect(Object.keys(headers).sort()).toEqual(EXPECTED_POST_HEADERS.filter((name) => name !== 'x-tenant'));
      expect(headers['x-mcp-subject']).toBe('alice');
      expect(headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(headers['x-request-id']).toBe(response.headers['x-request-id']);
      expect(decodeJwt(String(headers['x-mcp-identity'])).sub).toBe('alice');
    });

    it('sets them on DELETE too', async () => {
      const { accessToken } = await tokenFor(gw, 'alice');
      const init = await post(gw.mcpUrl, accessToken);
      await init.text();
      const session = init.headers.get('mcp-session-id')!;
      upstream.clearLog();
      const deleted = await fetch(gw.mcpUrl, {
        method: 'DELETE',
        headers: { ...SPOOFED, authorization: `Bearer ${accessToken}`, 'mcp-session-id': session, 'mcp-protocol-version': PROTOCOL_VERSION },
      });
      expect(deleted.status).toBe(200);
      const record = onlyForwarded();
      expect(record.method).toBe('DELETE');
      expect(record.headers).toMatchObject({ 'x-mcp-subject': 'alice', 'x-forwarded-for': '127.0.0.1', 'x-request-id': deleted.headers.get('x-request-id'), 'mcp-session-id': session });
      for (const name of ['x-real-ip', 'forwarded', 'true-client-ip', 'x-forwarded-user', 'x-forwarded-port', 'x_mcp_subject']) expect(record.headers).not.toHaveProperty(name);
    });

    it('forwards nothing at all for a request without a valid token, whatever headers it carries', async () => {
      for (const bearer of [undefined, 'not.a.jwt']) {
        const response = await post(gw.mcpUrl, bearer, SPOOFED);
        expect(response.status).toBe(401);
        await response.text();
      }
      // A real token for another resource is refused just the same.
      const other = await obtainAccessToken(idp, { resource: proxied.mcpUrl, scope: 'todo:read', subject: 'admin' });
      const response = await post(gw.mcpUrl, other.accessToken, SPOOFED);
      expect(response.status).toBe(401);
      expect(upstream.requests).toHaveLength(0);
    });

    it('logs the peer as the remote address, not what the client claimed', async () => {
      const { accessToken } = await tokenFor(gw, 'alice');
      const response = await post(gw.mcpUrl, accessToken, SPOOFED);
      await response.text();
      const requestId = response.headers.get('x-request-id');
      expect(requestId).not.toBe(SPOOFED['x-request-id']);
      const line = await gw.waitForLog((entry) => entry.event === 'access' && entry.requestId === requestId);
      expect(line).toMatchObject({ remote: '127.0.0.1', sub: 'alice', status: 200, route: 'todo', method: 'POST', path: '/mcp' });
    });

    it('serves the identity keys without authentication, public members only, on the admin listener too', async () => {
      const jwks = await fetchJwks(gw.gateway.url);
      expect(JSON.stringify(jwks)).not.toMatch(/"(d|p|q|dp|dq|qi)":/);
      expect(gw.gateway.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await fetchJwks(gw.gateway.adminUrl!)).toEqual(jwks);
      expect(upstream.requests).toHaveLength(0);
    });
  });

  describe('from a trusted proxy', () => {
    it('believes its X-Forwarded-For, -Proto, -Host and X-Request-Id, and logs the client it names', async () => {
      const alice = await tokenFor(proxied, 'alice');
      const response = await post(proxied.mcpUrl, alice.accessToken, {
        ...SPOOFED,
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'mcp.example.com',
        'x-request-id': 'trace-0001',
      });
      expect(response.status).toBe(200);
      await response.text();
      expect(response.headers.get('x-request-id')).toBe('trace-0001');
      const { headers } = onlyForwarded();
      expect(Object.keys(headers).sort()).toEqual(EXPECTED_POST_HEADERS.filter((name) => name !== 'x-tenant'));
      expect(headers).toMatchObject({
        'x-forwarded-for': '203.0.113.7, 127.0.0.1',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'mcp.example.com',
        'x-request-id': 'trace-0001',
        // A trusted proxy vouches for addresses, never for identities.
        'x-mcp-subject': 'alice',
        'x-mcp-client-id': alice.clientId,
        'x-mcp-issuer': idp.issuer,
      });
      const line = await proxied.waitForLog((entry) => entry.event === 'access' && entry.requestId === 'trace-0001');
      expect(line).toMatchObject({ remote: '203.0.113.7', sub: 'alice', status: 200 });

      // Signed with this gateway's RS256 key, for the same upstream, whatever host the proxy named.
      const { payload } = await jwtVerify(String(headers['x-mcp-identity']), createLocalJWKSet(await fetchJwks(proxied.gateway.url)), {
        issuer: proxied.gateway.publicUrl,
        audience: upstreamOrigin,
        algorithms: ['RS256'],
      });
      expect(payload).toMatchObject({ sub: 'alice', client_id: alice.clientId, token_iss: idp.issuer });
      expect(payload.exp! - payload.iat!).toBe(30);
      // Neither gateway's token verifies with the other's keys.
      await expect(jwtVerify(String(headers['x-mcp-identity']), createLocalJWKSet(await fetchJwks(gw.gateway.url)))).rejects.toThrow();
    });

    it('drops what untrusted hops claimed before the client it names', async () => {
      const { accessToken } = await tokenFor(proxied, 'alice');
      const response = await post(proxied.mcpUrl, accessToken, { 'x-forwarded-for': '10.0.0.9, 198.51.100.1, 203.0.113.7' });
      await response.text();
      expect(onlyForwarded().headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
      const line = await proxied.waitForLog((entry) => entry.event === 'access' && entry.requestId === response.headers.get('x-request-id'));
      expect(line.remote).toBe('203.0.113.7');
    });

    it('replaces a request id that is not a short visible-ASCII token with its own', async () => {
      const { accessToken } = await tokenFor(proxied, 'alice');
      const response = await post(proxied.mcpUrl, accessToken, { 'x-request-id': `${'x'.repeat(129)}` });
      await response.text();
      const id = response.headers.get('x-request-id');
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(onlyForwarded().headers['x-request-id']).toBe(id);
    });

    it('still forwards nothing for a request without a valid token', async () => {
      const response = await post(proxied.mcpUrl, undefined, { ...SPOOFED, 'x-forwarded-for': '203.0.113.7' });
      expect(response.status).toBe(401);
      expect(upstream.requests).toHaveLength(0);
      const line = await proxied.waitForLog((entry) => entry.event === 'access' && entry.requestId === response.headers.get('x-request-id'));
      expect(line).toMatchObject({ remote: '203.0.113.7', status: 401 });
    });
  });
});

describe('identity header configuration', () => {
  const file = resolve('gateway.yaml');
  const config = (routeExtra: string) => minimalConfig({ policy: resolve('policies/todo.yaml'), routeExtra });

  it('refuses an identity header that is also forwarded from the client, at its file:line:col', async () => {
    const problems = await configProblems(
      file,
      config(['    forwardHeaders: [x-tenant, x-mcp-subject]', '    identityHeaders:', '      subject: x-mcp-subject', '      token: x-mcp-identity'].join('\n')),
    );
    expect(problems).toEqual([{ file, line: 10, col: 16, message: "identity header 'x-mcp-subject' is also in forwardHeaders: a client could send its own" }]);
  });

  it('refuses one header name for two identities', async () => {
    const problems = await configProblems(file, config(['    identityHeaders:', '      subject: x-mcp-id', '      client: x-mcp-id'].join('\n')));
    expect(problems).toEqual([{ file, line: 10, col: 15, message: "identity header 'x-mcp-id' is used twice" }]);
  });

  it('refuses a header name that is not lower-case x-…', async () => {
    const problems = await configProblems(file, config(['    identityHeaders:', '      subject: Authorization'].join('\n')));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file, line: 9, col: 16 });
  });
});
