import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { BIN, runCli } from '../support/gateway-process.js';
import { makeSelfSignedCert, startBackends, startBlackHole, startTestGateway, type Backends, type BlackHole, type TestGateway } from '../support/hardening-stack.js';
import { initializeRequest, PROTOCOL_VERSION } from '../support/mcp-http.js';
import { destroyRawConnections, rawRequest, RawConnection, sendRaw } from '../support/raw-http.js';
import { TODO_POLICY } from '../support/stack.js';

/**
 * Issue 6 item 4 (hardening), over real sockets: every limit and timeout of the main listener
 * is met by a real oversized or slow client, and each refusal is checked against the upstream's
 * request log to prove nothing reached it. Timeouts are set low (hundreds of ms) so the suite
 * stays fast; each bound is asserted from both sides (not before the deadline, and soon after it).
 */

const LIMITS = { maxBodyBytes: 4096, maxHeaderBytes: 4096, maxHeaders: 20 };
const TIMEOUTS = { headers: 300, request: 800, idle: 400 };
/** Node checks the head and request deadlines every connectionsCheckingInterval; leave room for it and a loaded CI box. */
const SLACK_MS = 1_000;
/**
 * Node (20.20 here, and later lines) closes an idle keep-alive socket up to a second after
 * keepAliveTimeout (its HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER), so that a client reusing the
 * connection at the advertised `Keep-Alive: timeout=` does not race the close. The default
 * idle timeout (5 s) would still fail the upper bound below.
 */
const NODE_KEEP_ALIVE_GRACE_MS = 1_000;

/** A raw POST of `body` to /mcp with a bearer token and the MCP headers, plus `extra` headers. */
function mcpPost(host: string, token: string | undefined, body: string, extra: readonly (readonly [string, string])[] = []): string {
  return rawRequest(
    'POST /mcp HTTP/1.1',
    [
      ['Host', host],
      ...(token ? ([['Authorization', `Bearer ${token}`]] as const) : []),
      ['Content-Type', 'application/json'],
      ['Accept', 'application/json, text/event-stream'],
      ['Content-Length', String(Buffer.byteLength(body))],
      ...extra,
    ],
    body,
  );
}

const INIT = JSON.stringify(initializeRequest());

/** An MCP initialize through the gateway, as a client sends it. */
const initialize = (target: TestGateway, bearer: string, signal?: AbortSignal) =>
  fetch(target.mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL_VERSION },
    body: INIT,
    ...(signal ? { signal } : {}),
  });

/** When a socket closes (Date.now()), or Infinity if it has not within `timeoutMs`. */
const closedBy = (socket: Socket, timeoutMs: number) =>
  Promise.race([new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now()))), new Promise<number>((resolve) => setTimeout(() => resolve(Number.POSITIVE_INFINITY), timeoutMs))]);

/** A valid initialize request of exactly `size` bytes (the client name is padded). */
function initializeOfSize(size: number): string {
  const base = JSON.stringify(initializeRequest());
  const body = base.replace('"name":"raw-test"', `"name":"raw-test${'x'.repeat(size - base.length)}"`);
  expect(Buffer.byteLength(body)).toBe(size);
  return body;
}

describe('listener limits and timeouts', () => {
  let backends: Backends;
  let gw: TestGateway;
  let host: string;
  let token: string;

  beforeAll(async () => {
    backends = await startBackends();
    gw = await startTestGateway(backends, {
      head: [
        `limits: { maxBodyBytes: ${LIMITS.maxBodyBytes}, maxHeaderBytes: ${LIMITS.maxHeaderBytes}, maxHeaders: ${LIMITS.maxHeaders} }`,
        `timeouts: { headers: ${TIMEOUTS.headers}ms, request: ${TIMEOUTS.request}ms, idle: ${TIMEOUTS.idle}ms, upstreamResponse: 5s }`,
      ].join('\n'),
    });
    host = new URL(gw.url).host;
    token = await gw.token();
  });
  afterAll(async () => {
    await gw?.close();
    await backends?.close();
  });
  beforeEach(() => backends.upstream.clearLog());
  afterEach(() => destroyRawConnections());

  describe('limits.maxBodyBytes', () => {
    it('forwards a body of exactly maxBodyBytes', async () => {
      const body = initializeOfSize(LIMITS.maxBodyBytes);
      const connection = await RawConnection.open(gw.port);
      connection.write(mcpPost(host, token, body));
      const [response] = await connection.nextResponses(1);
      expect(response!.status).toBe(200);
      expect(backends.upstream.requests).toHaveLength(1);
    });

    // No Content-Length: the size is only known by counting what arrives, chunk by chunk.
    const chunkedPost = (body: string) =>
      rawRequest(
        'POST /mcp HTTP/1.1',
        [
          ['Host', host],
          ['Authorization', `Bearer ${token}`],
          ['Content-Type', 'application/json'],
          ['Accept', 'application/json, text/event-stream'],
          ['Transfer-Encoding', 'chunked'],
        ],
        `${body.match(/[^]{1,1000}/g)!.map((chunk) => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('')}0\r\n\r\n`,
      );

    it('forwards a chunked body of exactly maxBodyBytes', async () => {
      const connection = await RawConnection.open(gw.port);
      connection.write(chunkedPost(initializeOfSize(LIMITS.maxBodyBytes)));
      const [response] = await connection.nextResponses(1);
      expect(response!.status).toBe(200);
      expect(backends.upstream.requests).toHaveLength(1);
    });

    it('refuses a chunked body one byte over the limit with 413, and forwards nothing', async () => {
      const connection = await RawConnection.open(gw.port);
      connection.write(chunkedPost(initializeOfSize(LIMITS.maxBodyBytes + 1)));
      const [response] = await connection.nextResponses(1);
      expect(response!.status).toBe(413);
      expect(backends.upstream.requests).toHaveLength(0);
    });

    it('refuses a declared Content-Length over the limit with 413 before the body is sent', async () => {
      const connection = await RawConnection.open(gw.port);
      connection.write(mcpPost(host, token, '').replace('Content-Length: 0', `Content-Length: ${10 * 1024 * 1024}`));
      const [response] = await connection.nextResponses(1, 2_000);
      expect(response!.status).toBe(413);
      expect(backends.upstream.requests).toHaveLength(0);
    });
  });

  describe('limits.maxHeaderBytes', () => {
    const withHeadOf = (size: number) => {
      const base = mcpPost(host, token, INIT, [['X-Pad', '']]);
      const headLength = base.indexOf('\r\n\r\n') + 4;
      return mcpPost(host, token, INIT, [['X-Pad', 'p'.repeat(size - headLength)]]);
    };

    it('serves a head just under the limit', async () => {
      const connection = await RawConnection.open(gw.port);
      connection.write(withHeadOf(LIMITS.maxHeaderBytes - 200));
      const [response] = await connection.nextResponses(1);
      expect(response!.status).toBe(200);
      expect(backends.upstream.requests).toHaveLength(1);
    });

    it('answers 431 to a head over the limit, closes the connection, and forwards nothing', async () => {
      const connection = await RawConnection.open(gw.port);
      // A valid token and body: were the head accepted, this request would be forwarded.
      connection.write(withHeadOf(LIMITS.maxHeaderBytes + 200));
      expect(await connection.waitForClose(2_000)).toBe(true);
      expect(connection.statuses).toEqual([431]);
      expect(backends.upstream.requests).toHaveLength(0);
    });
  });

  describe('limits.maxHeaders', () => {
    // mcpPost sends 5 headers (Host, Authorization, Content-Type, Accept, Content-Length), then the extras.
    const withHeaderCount = (count: number) =>
      mcpPost(host, token, INIT, Array.from({ length: count - 5 }, (_, i) => [`X-Extra-${i}`, 'v'] as const));

    it(`serves exactly maxHeaders (${LIMITS.maxHeaders}) headers`, async () => {
      const connection = await RawConnection.open(gw.port);
      connection.write(withHeaderCount(LIMITS.maxHeaders));
      const [response] = await connection.nextResponses(1);
      expect(response!.status).toBe(200);
      expect(backends.upstream.requests).toHaveLength(1);
    });

    it('answers 431 to one header more, closes the connection, and forwards nothing', async () => {
      const connection = await RawConnection.open(gw.port);
      connection.write(withHeaderCount(LIMITS.maxHeaders + 1));
      expect(await connection.waitForClose(2_000)).toBe(true);
      expect(connection.statuses).toEqual([431]);
      expect(backends.upstream.requests).toHaveLength(0);
    });

    it('answers 431 to many more headers (which Node would otherwise drop silently)', async () => {
      const connection = await RawConnection.open(gw.port);
      connection.write(withHeaderCount(500));
      expect(await connection.waitForClose(2_000)).toBe(true);
      expect(connection.statuses).toEqual([431]);
      expect(backends.upstream.requests).toHaveLength(0);
    });
  });

  describe('slow clients (slowloris)', () => {
    it('cuts a client that connects and sends nothing after timeouts.headers', async () => {
      const connection = await RawConnection.open(gw.port);
      expect(await connection.waitForClose(TIMEOUTS.headers + SLACK_MS)).toBe(true);
      expect(connection.openForMs).toBeGreaterThanOrEqual(TIMEOUTS.headers - 50);
      expect(connection.statuses.every((status) => status === 408)).toBe(true);
    });

    it('cuts a client that drips its request head after timeouts.headers', async () => {
      const connection = await RawConnection.open(gw.port);
      connection.write(`GET /healthz HTTP/1.1\r\nHost: ${host}\r\n`);
      void connection.drip('X-Slow: still-typing-this-header-value-one-byte-at-a-time\r\n'.repeat(4), 50);
      expect(await connection.waitForClose(TIMEOUTS.headers + SLACK_MS)).toBe(true);
      expect(connection.openForMs).toBeGreaterThanOrEqual(TIMEOUTS.headers - 50);
      // 408 when Node can still say why; never an answer to the request.
      expect(connection.statuses.every((status) => status === 408)).toBe(true);
      expect(connection.statuses.length).toBeLessThanOrEqual(1);
    });

    it('cuts a client that sent its head but drips the body after timeouts.request, and forwards nothing', async () => {
      const connection = await RawConnection.open(gw.port);
      const whole = mcpPost(host, token, INIT);
      const headEnd = whole.indexOf('\r\n\r\n') + 4;
      connection.write(whole.slice(0, headEnd));
      void connection.drip(whole.slice(headEnd), 50);
      expect(await connection.waitForClose(TIMEOUTS.request + SLACK_MS)).toBe(true);
      // Past the head deadline: the request deadline, not the head one, ended it.
      expect(connection.openForMs).toBeGreaterThanOrEqual(TIMEOUTS.request - 50);
      expect(connection.statuses.every((status) => status === 408)).toBe(true);
      expect(connection.statuses.length).toBeLessThanOrEqual(1);
      expect(backends.upstream.requests).toHaveLength(0);
    });

    it('closes an idle keep-alive connection after timeouts.idle, not before', async () => {
      const connection = await RawConnection.open(gw.port);
      const healthz = rawRequest('GET /healthz HTTP/1.1', [['Host', host]]);
      connection.write(healthz);
      await connection.nextResponses(1);
      // Half the idle time later the connection still serves.
      await new Promise((resolve) => setTimeout(resolve, TIMEOUTS.idle / 2));
      connection.write(healthz);
      const responses = await connection.nextResponses(2);
      expect(responses.map((response) => response.status)).toEqual([200, 200]);
      const lastAnswer = Date.now();
      expect(await connection.waitForClose(TIMEOUTS.idle + NODE_KEEP_ALIVE_GRACE_MS + SLACK_MS)).toBe(true);
      expect(Date.now() - lastAnswer).toBeGreaterThanOrEqual(TIMEOUTS.idle - 50);
      expect(connection.statuses).toEqual([200, 200]);
    });

    describe('with a longer request deadline', () => {
      // A gateway of its own, so the two normal requests below have seconds, not the shared
      // gateway's 800 ms, to be served while the body drippers still hold their connections.
      const REQUEST_MS = 2_000;
      let roomy: TestGateway;
      let roomyToken: string;
      beforeAll(async () => {
        roomy = await startTestGateway(backends, { head: `timeouts: { headers: ${TIMEOUTS.headers}ms, request: ${REQUEST_MS}ms, idle: ${TIMEOUTS.idle}ms, upstreamResponse: 5s }` });
        roomyToken = await roomy.token();
        // Its issuer's keys fetched before the test, as the shared gateway's are by earlier tests.
        const warm = await initialize(roomy, roomyToken);
        expect(warm.status).toBe(200);
        await warm.text();
      });
      afterAll(async () => roomy?.close());

      it('keeps serving other clients while slow clients hold connections, and frees them', async () => {
        const roomyHost = new URL(roomy.url).host;
        const slow = await Promise.all(Array.from({ length: 30 }, () => RawConnection.open(roomy.port)));
        for (const [i, connection] of slow.entries()) {
          if (i % 2 === 0) {
            connection.write(`POST /mcp HTTP/1.1\r\nHost: ${roomyHost}\r\n`);
            void connection.drip(`Authorization: Bearer ${roomyToken}\r\n`, 50);
          } else {
            connection.write(mcpPost(roomyHost, roomyToken, INIT).replace(/\r\n\r\n[^]*$/, '\r\n\r\n'));
            void connection.drip(INIT, 50);
          }
        }
        const started = Date.now();
        const [health, init] = await Promise.all([fetch(`${roomy.url}/healthz`), initialize(roomy, roomyToken)]);
        expect(health.status).toBe(200);
        expect(init.status).toBe(200);
        await Promise.all([health.text(), init.text()]);
        // Served while the slow clients still held their connections (the body drippers hold
        // theirs until timeouts.request), not after they were cut.
        expect(Date.now() - started).toBeLessThan(REQUEST_MS - 100);
        expect(slow.filter((_, i) => i % 2 === 1).every((connection) => !connection.closed)).toBe(true);
        const closed = await Promise.all(slow.map((connection) => connection.waitForClose(REQUEST_MS + SLACK_MS)));
        expect(closed.every(Boolean)).toBe(true);
        // Only the one well-behaved initialize reached the upstream.
        expect(backends.upstream.requests).toHaveLength(1);
      });
    });
  });

  describe('trustedProxies', () => {
    const spoofed = { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'mcp.example.com' };
    const initWith = (target: TestGateway, bearer: string | undefined) =>
      fetch(target.mcpUrl, {
        method: 'POST',
        headers: {
          ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...spoofed,
        },
        body: INIT,
      });

    it('ignores X-Forwarded-* from a peer that is not a trusted proxy', async () => {
      const challenge = await initWith(gw, undefined);
      expect(challenge.status).toBe(401);
      expect(challenge.headers.get('www-authenticate')).toContain(`resource_metadata="${gw.url}/.well-known/oauth-protected-resource/mcp"`);
      const response = await initWith(gw, token);
      expect(response.status).toBe(200);
      const forwarded = backends.upstream.requests.at(-1)!;
      expect(forwarded.headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(forwarded.headers['x-forwarded-proto']).toBe('http');
      expect(forwarded.headers['x-forwarded-host']).toBe(host);
    });

    it('believes X-Forwarded-* from a configured trusted proxy, and still challenges with publicUrl', async () => {
      const proxied = await startTestGateway(backends, { head: 'trustedProxies: [127.0.0.1]' });
      try {
        const challenge = await initWith(proxied, undefined);
        expect(challenge.status).toBe(401);
        expect(challenge.headers.get('www-authenticate')).toContain(`resource_metadata="${proxied.url}/.well-known/oauth-protected-resource/mcp"`);
        const response = await initWith(proxied, await proxied.token());
        expect(response.status).toBe(200);
        const forwarded = backends.upstream.requests.at(-1)!;
        expect(forwarded.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
        expect(forwarded.headers['x-forwarded-proto']).toBe('https');
        expect(forwarded.headers['x-forwarded-host']).toBe('mcp.example.com');
      } finally {
        await proxied.close();
      }
    });
  });

  describe('limits.maxConnections', () => {
    let capped: TestGateway;
    const healthz = () => rawRequest('GET /healthz HTTP/1.1', [['Host', host]]);
    /**
     * A head deadline of a second here: slow clients must still hold every slot when the test
     * opens one more connection after them, even if the test process stalls a few hundred ms.
     */
    const CAPPED_TIMEOUTS = { headers: 1_000, request: 2_000 };
    const connections = () => new Promise<number>((resolve, reject) => capped.gateway.server.getConnections((error, n) => (error ? reject(error) : resolve(n))));

    beforeAll(async () => {
      capped = await startTestGateway(backends, {
        head: `limits: { maxConnections: 3 }\ntimeouts: { headers: ${CAPPED_TIMEOUTS.headers}ms, request: ${CAPPED_TIMEOUTS.request}ms }`,
      });
    });
    afterAll(async () => capped?.close());
    // Each test starts with every slot free: the server sees earlier tests' closes asynchronously.
    beforeEach(async () => {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const count = await connections();
        if (count === 0 || Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });

    /**
     * Opens connections until one is served (the server frees a slot asynchronously after a
     * close). A probe past the cap is closed at once, an admitted one answered: each wait ends
     * on whichever comes, so its generous bound costs nothing.
     */
    async function admittedWithin(timeoutMs: number): Promise<RawConnection | undefined> {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const next = await RawConnection.open(capped.port);
        next.write(healthz());
        if (await next.waitUntil(() => next.responses.length === 1, 5_000)) return next;
        next.destroy();
      }
      return undefined;
    }

    it('closes connections past the cap at once while the open ones keep working, and admits again when one closes', async () => {
      const held = await Promise.all([1, 2, 3].map(() => RawConnection.open(capped.port)));
      for (const connection of held) connection.write(healthz());
      for (const connection of held) expect((await connection.nextResponses(1))[0]!.status).toBe(200);

      // Closed without a byte: had it been admitted it would be answered (or get a 408 at the head deadline).
      const fourth = await RawConnection.open(capped.port);
      fourth.write(healthz());
      expect(await fourth.waitForClose(5_000)).toBe(true);
      expect(fourth.text).toBe('');

      for (const connection of held) connection.write(healthz());
      for (const connection of held) expect((await connection.nextResponses(2)).map((r) => r.status)).toEqual([200, 200]);

      held[0]!.destroy();
      expect((await admittedWithin(5_000))?.responses[0]?.status).toBe(200);
    });

    it('slow clients holding every slot lose them at timeouts.headers, and a normal client is served', async () => {
      const slowOpened = Date.now();
      const slow = await Promise.all([1, 2, 3].map(() => RawConnection.open(capped.port)));
      for (const connection of slow) {
        connection.write(`GET /healthz HTTP/1.1\r\nHost: ${host}\r\n`);
        void connection.drip('X-Slow: 1\r\n'.repeat(20), 50);
      }
      // The server has counted all three before the next one comes.
      await vi.waitFor(async () => expect(await connections()).toBe(3), { timeout: 5_000, interval: 10 });
      const refused = await RawConnection.open(capped.port);
      refused.write(healthz());
      expect(await refused.waitForClose(5_000)).toBe(true);
      expect(refused.text).toBe('');

      const admitted = await admittedWithin(5_000);
      expect(admitted?.responses[0]?.status).toBe(200);
      // A slot freed at the head deadline of the slow clients, not before it and not long after:
      // measured from their connecting to the admitted client's, so neither the refused probe
      // nor the waits below count.
      const admittedAfter = admitted!.connectedAt - slowOpened;
      expect(admittedAfter).toBeGreaterThanOrEqual(CAPPED_TIMEOUTS.headers - 50);
      expect(admittedAfter).toBeLessThan(CAPPED_TIMEOUTS.headers + SLACK_MS + 500);
      // The other slow ones close in the same sweep, though on a loaded machine their 'close'
      // may arrive a moment after the admitted client's answer.
      expect(await Promise.all(slow.map((connection) => connection.waitForClose(5_000)))).toEqual([true, true, true]);
    });
  });
});

describe('upstream timeouts', () => {
  let backends: Backends;
  let blackHole: BlackHole;
  let silent: Server;
  let silentUrl: string;

  beforeAll(async () => {
    backends = await startBackends();
    blackHole = await startBlackHole();
    // Completes the handshake, reads the request, never answers.
    silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/mcp`;
  });
  afterAll(async () => {
    blackHole?.close();
    silent?.closeAllConnections();
    await new Promise((resolve) => silent?.close(resolve));
    await backends?.close();
  });

  it('answers 502 after timeouts.upstreamConnect when the upstream never completes the handshake, long before upstreamResponse', async () => {
    const gw = await startTestGateway(backends, {
      upstreamUrl: `http://127.0.0.1:${blackHole.port}/mcp`,
      head: 'timeouts: { upstreamConnect: 300ms, upstreamResponse: 2s }',
    });
    try {
      const bearer = await gw.token();
      const started = Date.now();
      const response = await initialize(gw, bearer);
      const elapsed = Date.now() - started;
      expect(response.status).toBe(502);
      const { error } = (await response.json()) as { error: { code: number; message: string } };
      expect(error.code).toBe(-32603);
      expect(error.message).toBe('Upstream unavailable (connect timeout)');
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(2_000);
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    } finally {
      await gw.close();
    }
  });

  it('answers 504 after timeouts.upstreamResponse when the upstream connects but never answers (the connect deadline no longer applies)', async () => {
    const gw = await startTestGateway(backends, { upstreamUrl: silentUrl, head: 'timeouts: { upstreamConnect: 200ms, upstreamResponse: 700ms }' });
    try {
      const bearer = await gw.token();
      const started = Date.now();
      const response = await initialize(gw, bearer);
      const elapsed = Date.now() - started;
      expect(response.status).toBe(504);
      expect(elapsed).toBeGreaterThanOrEqual(650);
      expect(elapsed).toBeLessThan(2_500);
    } finally {
      await gw.close();
    }
  });
});

describe('a client that leaves before the upstream answers', () => {
  let backends: Backends;
  let upstream: Server;
  let arrived: Promise<IncomingMessage>;
  let onArrival: (req: IncomingMessage) => void;
  const pendingAnswers: ServerResponse[] = [];

  beforeAll(async () => {
    backends = await startBackends();
    // Reads the request and answers only when a test says so: only the gateway can end the exchange.
    upstream = createServer((req, res) => {
      pendingAnswers.push(res);
      onArrival(req);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
    await backends?.close();
  });

  it('releases the upstream while a JSON answer that is checked (filtered) is still arriving', async () => {
    // Headers at once, the body only much later: the gateway is reading it to filter it.
    arrived = new Promise((resolve) => (onArrival = resolve));
    const gw = await startTestGateway(backends, { upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`, head: 'timeouts: { upstreamResponse: 20s }' });
    try {
      const client = new AbortController();
      const answer = initialize(gw, await gw.token(), client.signal).catch((error: unknown) => error);
      const upstreamClosed = closedBy((await arrived).socket, 3_000);
      pendingAnswers.shift()?.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' }).flushHeaders();
      // Let the gateway get the headers and start reading the body, then leave.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const leftAt = Date.now();
      client.abort();
      await answer;
      expect((await upstreamClosed) - leftAt).toBeLessThan(2_000);
    } finally {
      await gw.close();
    }
  });

  it('releases the upstream request at once, not at timeouts.upstreamResponse', async () => {
    arrived = new Promise((resolve) => (onArrival = resolve));
    const gw = await startTestGateway(backends, { upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`, head: 'timeouts: { upstreamResponse: 20s }' });
    try {
      const client = new AbortController();
      const answer = initialize(gw, await gw.token(), client.signal).catch((error: unknown) => error);
      const upstreamClosed = closedBy((await arrived).socket, 3_000);
      const leftAt = Date.now();
      client.abort();
      expect(await answer).toBeInstanceOf(Error);
      expect((await upstreamClosed) - leftAt).toBeLessThan(2_000);
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    } finally {
      await gw.close();
    }
  });
});

describe('a refusal answered before the body has arrived', () => {
  let backends: Backends;
  let gw: TestGateway;

  beforeAll(async () => {
    backends = await startBackends();
    gw = await startTestGateway(backends);
  });
  afterAll(async () => {
    await gw?.close();
    await backends?.close();
  });

  // The direct path (/mcp) and the router's (/m%63p, the same route) must both stop reading an
  // upload they refused, rather than take it in for as long as the client keeps sending.
  it.each(['/mcp', '/m%63p'])('%s: 401, then the connection closes while the client is still sending', async (path) => {
    const connection = await RawConnection.open(gw.url);
    connection.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{`);
    const chunk = 'x'.repeat(64 * 1024);
    const feeding = setInterval(() => {
      if (!connection.closed) connection.write(chunk);
    }, 5);
    try {
      const [response] = await connection.nextResponses(1, 3_000);
      expect(response?.status).toBe(401);
      expect(await connection.waitForClose(2_000)).toBe(true);
    } finally {
      clearInterval(feeding);
      connection.destroy();
    }
  });
});

describe('an upstream at an IPv6 literal (http://[::1]:port)', () => {
  let backends: Backends;
  let upstream: Server;
  let seen: { host?: string | undefined; path?: string | undefined } = {};

  beforeAll(async () => {
    backends = await startBackends();
    // Answers initialize as an MCP server would, and remembers how it was addressed.
    upstream = createServer((req, res) => {
      seen = { host: req.headers.host, path: req.url };
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, serverInfo: { name: 'v6', version: '1' } } });
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'v6-session', 'content-length': Buffer.byteLength(body) }).end(body);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '::1', resolve));
  });
  afterAll(async () => {
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
    await backends?.close();
  });

  it('is reached, with the bracketed host in the Host header', async () => {
    const port = (upstream.address() as AddressInfo).port;
    const gw = await startTestGateway(backends, { upstreamUrl: `http://[::1]:${port}/mcp` });
    try {
      const response = await initialize(gw, await gw.token());
      expect(response.status).toBe(200);
      expect(((await response.json()) as { result: { serverInfo: { name: string } } }).result.serverInfo.name).toBe('v6');
      expect(seen).toEqual({ host: `[::1]:${port}`, path: '/mcp' });
    } finally {
      await gw.close();
    }
  });
});

describe('TLS termination (tls.certFile, tls.keyFile)', () => {
  let backends: Backends;
  let gw: TestGateway;
  let ca: string;

  /** node:https with the test CA: status, headers and body. */
  const httpsCall = (url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
      const req = httpsRequest(url, { method: init.method ?? 'GET', headers: init.headers ?? {}, ca, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end(init.body);
    });

  beforeAll(async () => {
    backends = await startBackends();
    gw = await startTestGateway(backends, {
      prepare: (dir) => makeSelfSignedCert(dir),
      head: `tls: { certFile: cert.pem, keyFile: key.pem }\ntimeouts: { headers: ${TIMEOUTS.headers}ms }`,
    });
    ca = await readFile(join(gw.dir, 'cert.pem'), 'utf8');
  });
  afterAll(async () => {
    await gw?.close();
    await backends?.close();
  });
  afterEach(() => destroyRawConnections());

  it('serves HTTPS with the configured certificate', async () => {
    expect(gw.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const response = await httpsCall(`${gw.url}/healthz`);
    expect(response.status).toBe(200);
    // And a client that does not trust the certificate refuses it: it really is this one.
    await expect(fetch(`${gw.url}/healthz`)).rejects.toThrow();
  });

  it("challenges with resource_metadata on the https publicUrl, whose metadata names the https resource", async () => {
    const challenge = await httpsCall(gw.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: INIT });
    expect(challenge.status).toBe(401);
    const metadataUrl = `${gw.url}/.well-known/oauth-protected-resource/mcp`;
    expect(challenge.headers['www-authenticate']).toBe(`Bearer scope="todo:read", resource_metadata="${metadataUrl}"`);
    const metadata = await httpsCall(metadataUrl);
    expect(metadata.status).toBe(200);
    expect((JSON.parse(metadata.body) as { resource: string }).resource).toBe(gw.mcpUrl);
  });

  it('forwards an authorised request to the upstream, telling it the client used https', async () => {
    backends.upstream.clearLog();
    const response = await httpsCall(gw.mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${await gw.token()}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: INIT,
    });
    expect(response.status).toBe(200);
    expect(backends.upstream.requests).toHaveLength(1);
    expect(backends.upstream.requests[0]!.headers['x-forwarded-proto']).toBe('https');
  });

  it('never answers plain HTTP on the TLS port, and keeps serving HTTPS', async () => {
    const plain = await sendRaw(gw.port, rawRequest('GET /healthz HTTP/1.1', [['Host', `127.0.0.1:${gw.port}`]]), 2_000);
    expect(plain.closed).toBe(true);
    expect(plain.statuses.every((status) => status >= 400)).toBe(true);
    await expect(fetch(`http://127.0.0.1:${gw.port}/healthz`)).rejects.toThrow();
    expect((await httpsCall(`${gw.url}/healthz`)).status).toBe(200);
  });

  it('cuts a client that never completes the TLS handshake after timeouts.headers (not Node\'s 120 s)', async () => {
    const silent = await RawConnection.open(gw.port);
    const dripping = await RawConnection.open(gw.port);
    // The first bytes of a TLS record header (handshake, TLS 1.0 record version), then nothing useful.
    void dripping.drip('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', 50);
    const closed = await Promise.all([silent, dripping].map((connection) => connection.waitForClose(TIMEOUTS.headers + SLACK_MS)));
    expect(closed).toEqual([true, true]);
    expect(silent.openForMs).toBeGreaterThanOrEqual(TIMEOUTS.headers - 50);
    expect((await httpsCall(`${gw.url}/healthz`)).status).toBe(200);
  });

  it('validate reports a certificate and key that do not match at file:line:col', async () => {
    expect(existsSync(BIN), 'dist/src/bin.js is missing: run `npm run build` (npm test does)').toBe(true);
    const dir = await mkdtemp(join(tmpdir(), 'mcp-gw-tls-'));
    try {
      await makeSelfSignedCert(dir);
      await makeSelfSignedCert(dir, { cert: 'other-cert.pem', key: 'other-key.pem' });
      await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
      const file = join(dir, 'gateway.yaml');
      await writeFile(
        file,
        [
          'listen: { host: 127.0.0.1, port: 0 }',
          'tls: { certFile: cert.pem, keyFile: other-key.pem }',
          'issuers:',
          '  - issuer: https://idp.example.test',
          'routes:',
          '  - { name: todo, path: /mcp, upstream: "http://127.0.0.1:9/mcp", policy: todo.yaml }',
        ].join('\n'),
      );
      const { code, stderr } = await runCli(['validate', '--config', file]);
      expect(code).toBe(2);
      expect(stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:\\d+: tls\\.certFile and tls\\.keyFile do not make a usable pair`));
      await writeFile(file, (await readFile(file, 'utf8')).replace('other-key.pem', 'key.pem'));
      expect((await runCli(['validate', '--config', file])).code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the gateway process', () => {
  let backends: Backends;
  let dir: string;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    expect(existsSync(BIN), 'dist/src/bin.js is missing: run `npm run build` (npm test does)').toBe(true);
    backends = await startBackends();
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-proc-'));
    await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
    await writeFile(
      join(dir, 'gateway.yaml'),
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        'issuers:',
        `  - issuer: ${backends.idp.issuer}`,
        'routes:',
        `  - { name: todo, path: /mcp, upstream: "${backends.upstream.url}", policy: todo.yaml }`,
      ].join('\n'),
    );
  });
  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    await backends?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs the built gateway with `preload` (module source) imported first via NODE_OPTIONS; resolves once it listens. */
  async function spawnWithPreload(name: string, preload: string): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
    const file = join(dir, name);
    await writeFile(file, preload);
    const child = spawn(process.execPath, [BIN, '--config', join(dir, 'gateway.yaml')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: `--import ${pathToFileURL(file).href}` },
    });
    children.add(child);
    // Never outlive the test run, even if afterAll does not get to run.
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    child.once('exit', () => process.off('exit', killOnExit));
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'gateway listening') resolve(entry.url!);
      });
      child.once('exit', (code) => reject(new Error(`gateway exited early with ${code}: ${stderr}`)));
    });
    return { child, url, stderr: () => stderr };
  }

  async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  async function expectServingThenStop(child: ChildProcess, url: string): Promise<void> {
    expect(child.exitCode).toBeNull();
    expect(child.signalCode).toBeNull();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const challenge = await fetch(`${url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: INIT });
    expect(challenge.status).toBe(401);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }

  it('survives an unhandled rejection from a dependency while serving, logs it, and keeps answering', async () => {
    // Stands in for any dependency that lets a promise reject unobserved: on SIGUSR2 (sent once
    // the gateway listens), it rejects two promises nobody awaits.
    const { child, url, stderr } = await spawnWithPreload(
      'reject-on-signal.mjs',
      "process.on('SIGUSR2', () => { Promise.reject(new Error('boom from a dependency')); (async () => { throw new Error('boom again'); })(); });\n",
    );
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    child.kill('SIGUSR2');
    await waitFor(() => (stderr().includes('boom from a dependency') && stderr().includes('boom again')) || child.exitCode !== null, 3_000);
    expect(stderr()).toContain('unhandled rejection');
    expect(stderr()).toContain('boom from a dependency');
    expect(stderr()).toContain('boom again');
    await expectServingThenStop(child, url);
  });

  it('survives an unhandled rejection from a dependency during startup', async () => {
    // The first outgoing fetch (issuer discovery, while the gateway starts) also lets a promise
    // reject unobserved: a dependency failing in the background before the gateway listens.
    const { child, url, stderr } = await spawnWithPreload(
      'reject-on-first-fetch.mjs',
      [
        'const realFetch = globalThis.fetch;',
        'let fired = false;',
        'globalThis.fetch = (...args) => {',
        "  if (!fired) { fired = true; Promise.reject(new Error('boom during startup')); }",
        '  return realFetch(...args);',
        '};',
      ].join('\n'),
    );
    await waitFor(() => stderr().includes('boom during startup') || child.exitCode !== null, 3_000);
    expect(stderr()).toContain('unhandled rejection');
    expect(stderr()).toContain('boom during startup');
    await expectServingThenStop(child, url);
  });
});
