import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startBackends, startTestGateway, type Backends, type TestGateway } from '../support/hardening-stack.js';
import { initializeRequest } from '../support/mcp-http.js';
import { destroyRawConnections, rawRequest, sendRaw, type RawResponse } from '../support/raw-http.js';

/**
 * Routes match on the normalised path only, and nothing but a valid token gets a request past
 * the route (issue 6 item 4). Requests are written byte for byte over a raw socket, so the
 * request target reaches the gateway exactly as an attacker would send it (fetch would
 * normalise most of these first).
 *
 * How a request target becomes a route (route `/mcp`):
 * - Dot-segments are removed (RFC 3986 §5.2.4, §6.2.2.3) when the URL is parsed, by Node's and
 *   Hono's WHATWG URL handling, `%2e` spellings included: `/x/../mcp` and `/./mcp` ARE the route;
 *   `/mcp/../x` and `/mcp/.` (= `/mcp/`) are not.
 * - Percent-encoded unreserved characters are equivalent to the characters (RFC 3986 §6.2.2.2):
 *   `/%6dcp`, `/%6Dcp` and `/mc%70` ARE the route. Encoded reserved characters are not decoded
 *   (`%2f` is not `/`, `%3f` is not `?`): `/mcp%2f` is another path.
 * - Case is significant in the path (RFC 3986 §6.2.2.1 normalises only scheme and host):
 *   `/MCP` is another path.
 * - `;` is an ordinary path character (RFC 3986 §3.3): `/mcp;x` is another segment, not
 *   `/mcp` with parameters. Trailing and doubled slashes are other paths (routes are strict).
 * - Neither the query nor a fragment is part of the path: `/mcp?x=1` IS the route, and so is
 *   `/mcp#frag` (a fragment is never sent in a request target, RFC 9112 §3.2; written there
 *   anyway, URL parsing drops it).
 * - An absolute-form target (`POST http://host/mcp`, RFC 9112 §3.2.2) is routed by its path.
 *
 * Either way the answer is the route's 401 challenge or a plain 404: never a 200, and never a
 * forward without a valid token. And a forwarded request always goes to the route's configured
 * upstream URL: the client's path (or query) never reaches the upstream, so no spelling can
 * reach another upstream path. The upstream here serves MCP at `/upstream-mcp` to show it.
 */

const UPSTREAM_PATH = '/upstream-mcp';
const BODY = JSON.stringify(initializeRequest());

/** `route`: the /mcp route's answer (401 challenge without a token, forwarded with one); `none`: 404. */
const TARGETS: readonly { target: string; means: 'route' | 'none'; why: string }[] = [
  { target: '/mcp', means: 'route', why: 'the route itself' },
  { target: '/mcp?x=1', means: 'route', why: 'the query is not part of the path' },
  { target: '/mcp?x=/../healthz', means: 'route', why: 'dots in the query are not dot-segments' },
  { target: '/mcp#frag', means: 'route', why: 'a fragment is not part of the path' },
  { target: '/mcp?x=1#frag', means: 'route', why: 'neither query nor fragment is part of the path' },
  { target: '/x/../mcp', means: 'route', why: 'dot-segment removal gives /mcp' },
  { target: '/healthz/../mcp', means: 'route', why: 'dot-segment removal gives /mcp' },
  { target: '/./mcp', means: 'route', why: 'dot-segment removal gives /mcp' },
  { target: '/x/%2e%2e/mcp', means: 'route', why: '%2e%2e is a dot-segment too (WHATWG URL)' },
  { target: '/%6dcp', means: 'route', why: '%6d is the unreserved "m" (RFC 3986 §6.2.2.2)' },
  { target: '/%6Dcp', means: 'route', why: 'hex digits in percent-encoding are case-insensitive' },
  { target: '/mc%70', means: 'route', why: '%70 is the unreserved "p"' },
  { target: '/MCP', means: 'none', why: 'the path is case-sensitive' },
  { target: '/Mcp', means: 'none', why: 'the path is case-sensitive' },
  { target: '/%4dCP', means: 'none', why: 'decodes to /MCP, still case-sensitive' },
  { target: '/mcp/', means: 'none', why: 'routes match exactly: no trailing slash' },
  { target: '//mcp', means: 'none', why: 'an empty first segment is another path' },
  { target: '/mcp/../x', means: 'none', why: 'dot-segment removal gives /x' },
  { target: '/mcp/%2e%2e/x', means: 'none', why: 'dot-segment removal gives /x' },
  { target: '/mcp/.', means: 'none', why: 'dot-segment removal gives /mcp/' },
  { target: '/mcp%2f', means: 'none', why: 'an encoded "/" is data, not a separator' },
  { target: '/mcp%2F', means: 'none', why: 'an encoded "/" is data, not a separator' },
  { target: '/mcp%3fx=1', means: 'none', why: 'an encoded "?" is data, not a query' },
  { target: '/mcp%00', means: 'none', why: 'a NUL is data' },
  { target: '/mcp%20', means: 'none', why: 'a space is data' },
  { target: '/mcp;x', means: 'none', why: '";" is part of the segment' },
  { target: '/mcp;', means: 'none', why: '";" is part of the segment' },
  { target: '/mcpx', means: 'none', why: 'no prefix matches' },
  { target: '/mcp/x', means: 'none', why: 'no prefix matches' },
];

describe('route matching on the normalised path', () => {
  let backends: Backends;
  let gw: TestGateway;
  let host: string;
  let token: string;
  let challenge: string;

  const post = (target: string, bearer: string | undefined, extra: readonly (readonly [string, string])[] = []) =>
    rawRequest(
      `POST ${target} HTTP/1.1`,
      [
        ['Host', host],
        ...(bearer ? ([['Authorization', `Bearer ${bearer}`]] as const) : []),
        ['Content-Type', 'application/json'],
        ['Accept', 'application/json, text/event-stream'],
        ['Content-Length', String(BODY.length)],
        ...extra,
      ],
      BODY,
    );

  const send = async (request: string): Promise<RawResponse> => {
    const connection = await sendRaw(gw.port, request, 3_000, { untilResponses: 1 });
    const [response] = connection.responses;
    if (!response) throw new Error(`no response; received ${JSON.stringify(connection.text.slice(0, 300))}`);
    return response;
  };

  beforeAll(async () => {
    backends = await startBackends({ upstreamPath: UPSTREAM_PATH });
    gw = await startTestGateway(backends);
    host = new URL(gw.url).host;
    token = await gw.token();
    challenge = `Bearer scope="todo:read", resource_metadata="${gw.url}/.well-known/oauth-protected-resource/mcp"`;
  });
  afterAll(async () => {
    await gw?.close();
    await backends?.close();
  });
  beforeEach(() => backends.upstream.clearLog());
  afterEach(() => destroyRawConnections());

  describe('without a token: the route challenges, anything else is 404', () => {
    it.each(TARGETS)('$target → $means ($why)', async ({ target, means }) => {
      const response = await send(post(target, undefined));
      if (means === 'route') {
        expect(response.status).toBe(401);
        expect(response.headers['www-authenticate']).toBe(challenge);
      } else {
        expect(response.status).toBe(404);
        expect(response.headers['www-authenticate']).toBeUndefined();
      }
      expect(backends.upstream.requests).toHaveLength(0);
    });

    it('routes an absolute-form target by its path, whatever host it names', async () => {
      for (const target of [`http://${host}/mcp`, 'http://upstream.internal/mcp', `http://${host}/x/../mcp?y=1`]) {
        const response = await send(post(target, undefined));
        expect(response.status).toBe(401);
        expect(response.headers['www-authenticate']).toBe(challenge);
      }
      for (const target of [`http://${host}/MCP`, `http://${host}/healthz/../mcp/`, 'http://upstream.internal/upstream-mcp']) {
        expect((await send(post(target, undefined))).status).toBe(404);
      }
      expect(backends.upstream.requests).toHaveLength(0);
    });
  });

  describe('with a valid token', () => {
    const routeTargets = TARGETS.filter((entry) => entry.means === 'route').map((entry) => entry.target);

    it.each([...routeTargets, 'http://upstream.internal/mcp?x=1'])('%s is forwarded, to the configured upstream path only', async (target) => {
      const response = await send(post(target, token));
      expect(response.status).toBe(200);
      expect(backends.upstream.requests).toHaveLength(1);
      expect(backends.upstream.requests[0]!.path).toBe(UPSTREAM_PATH);
    });

    it.each(TARGETS.filter((entry) => entry.means === 'none').map((entry) => entry.target))('%s is still 404 and forwards nothing', async (target) => {
      expect((await send(post(target, token))).status).toBe(404);
      expect(backends.upstream.requests).toHaveLength(0);
    });
  });

  describe('no header or user agent skips authentication', () => {
    const bypassAttempts: readonly (readonly [string, string])[] = [
      ['X-Original-URL', '/healthz'],
      ['X-Rewrite-URL', '/healthz'],
      ['X-Original-URI', '/healthz'],
      ['X-Forwarded-Prefix', '/healthz'],
      ['X-Forwarded-Uri', '/healthz'],
      ['X-Forwarded-For', '127.0.0.1'],
      ['X-Real-IP', '127.0.0.1'],
      ['Forwarded', 'for=127.0.0.1;proto=https'],
      ['X-Forwarded-Host', 'localhost'],
      ['X-Forwarded-Proto', 'https'],
      ['X-HTTP-Method-Override', 'GET'],
      ['X-Forwarded-User', 'admin'],
      ['X-Auth-Request-User', 'admin'],
      ['X-Remote-User', 'admin'],
      ['X-Authenticated-User', 'admin'],
      ['Authorization', 'Basic YWRtaW46YWRtaW4='],
      ['Authorization', 'Bearer'],
      ['Cookie', 'session=admin'],
      ['User-Agent', 'kube-probe/1.30'],
      ['User-Agent', 'ELB-HealthChecker/2.0'],
      ['User-Agent', 'GoogleHC/1.0'],
      ['User-Agent', 'Prometheus/2.53.0'],
    ];

    it.each(bypassAttempts)('%s: %s → 401 with the challenge, nothing forwarded', async (name, value) => {
      const response = await send(post('/mcp', undefined, [[name, value]]));
      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toContain(`resource_metadata="${gw.url}/.well-known/oauth-protected-resource/mcp"`);
      expect(backends.upstream.requests).toHaveLength(0);
    });

    it('all of them at once, on GET and DELETE too', async () => {
      const all = bypassAttempts.filter(([name]) => name !== 'Authorization');
      for (const method of ['POST', 'GET', 'DELETE']) {
        const request =
          method === 'POST'
            ? post('/mcp', undefined, all)
            : rawRequest(`${method} /mcp HTTP/1.1`, [['Host', host], ['Accept', 'application/json, text/event-stream'], ['Mcp-Session-Id', 'abc'], ...all]);
        const response = await send(request);
        expect(response.status).toBe(401);
      }
      expect(backends.upstream.requests).toHaveLength(0);
    });

    it('a rewrite header never routes a 404 path to the route either', async () => {
      const response = await send(post('/healthz/x', token, [['X-Original-URL', '/mcp'], ['X-Rewrite-URL', '/mcp']]));
      expect(response.status).toBe(404);
      expect(backends.upstream.requests).toHaveLength(0);
    });
  });
});
