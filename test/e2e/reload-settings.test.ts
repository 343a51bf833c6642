import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackends, startBlackHole, startTestGateway, type Backends, type BlackHole, type TestGateway } from '../support/hardening-stack.js';
import { initializeRequest, PROTOCOL_VERSION } from '../support/mcp-http.js';

/**
 * Issue 23 item 15, over real sockets: a reload applies the limits and timeouts that are read
 * per request (maxBodyBytes, upstreamConnect, upstreamResponse, issuerDiscovery), each seen
 * taking effect both ways, without a warning; a reload that changes a listener-level limit logs
 * the warning naming it and the listener goes on as started, while the rest of that reload is
 * applied.
 */

/** An MCP initialize of exactly `size` bytes (the client name padded), with `headers` added. */
function initialize(target: TestGateway, bearer: string, size?: number, headers: Record<string, string> = {}) {
  let body = JSON.stringify(initializeRequest());
  if (size !== undefined) body = body.replace('"name":"raw-test"', `"name":"raw-test${'x'.repeat(size - body.length)}"`);
  if (size !== undefined) expect(Buffer.byteLength(body)).toBe(size);
  return fetch(target.mcpUrl, {
    method: 'POST',
    headers: { ...headers, authorization: `Bearer ${bearer}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL_VERSION },
    body,
  });
}

/** The status and how long the answer took. */
async function timedStatus(request: Promise<Response>): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  const response = await request;
  await response.arrayBuffer();
  return { status: response.status, ms: Date.now() - started };
}

const restartWarnings = (gw: TestGateway) => gw.logs.filter((entry) => entry.event === 'reload' && Array.isArray(entry.restartOnly));

/** An HTTP server answering every request with `answer` after `delayMs`. */
async function startDelayed(delayMs: number, answer: () => Promise<{ type: string; body: string }>): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    setTimeout(() => {
      void answer().then(({ type, body }) => {
        if (!res.destroyed) res.writeHead(200, { 'content-type': type }).end(body);
      });
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('a reload applies the per-request limits and timeouts', () => {
  let backends: Backends;
  let blackHole: BlackHole;
  beforeAll(async () => {
    backends = await startBackends();
    blackHole = await startBlackHole();
  });
  afterAll(async () => {
    blackHole?.close();
    await backends?.close();
  });

  it('limits.maxBodyBytes: a body refused with 413 is accepted after a reload raises it, and refused again after one lowers it', async () => {
    const gw = await startTestGateway(backends, { head: 'limits: { maxBodyBytes: 4096 }' });
    try {
      const bearer = await gw.token();
      expect((await initialize(gw, bearer, 6000)).status).toBe(413);
      await gw.reload('limits: { maxBodyBytes: 8192 }');
      expect((await initialize(gw, bearer, 6000)).status).toBe(200);
      await gw.reload('limits: { maxBodyBytes: 4096 }');
      expect((await initialize(gw, bearer, 6000)).status).toBe(413);
      expect((await initialize(gw, bearer, 4000)).status).toBe(200);
      expect(restartWarnings(gw)).toEqual([]);
    } finally {
      await gw.close();
    }
  });

  it('timeouts.upstreamResponse: an upstream answering in 600 ms gets 504 under 200ms, and is answered after a reload to 3s', async () => {
    const slow = await startDelayed(600, async () => ({
      type: 'application/json',
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, result: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, serverInfo: { name: 'slow', version: '1' } } }),
    }));
    const gw = await startTestGateway(backends, { upstreamUrl: `${slow.url}/mcp`, head: 'timeouts: { upstreamResponse: 200ms }' });
    try {
      const bearer = await gw.token();
      expect((await timedStatus(initialize(gw, bearer))).status).toBe(504);
      await gw.reload('timeouts: { upstreamResponse: 3s }');
      const after = await timedStatus(initialize(gw, bearer));
      expect(after.status).toBe(200);
      expect(after.ms).toBeGreaterThanOrEqual(550);
      await gw.reload('timeouts: { upstreamResponse: 200ms }');
      expect((await timedStatus(initialize(gw, bearer))).status).toBe(504);
      expect(restartWarnings(gw)).toEqual([]);
    } finally {
      await gw.close();
      await slow.close();
    }
  });

  it('timeouts.upstreamConnect: the 502 for an upstream that never completes its handshake comes after the reloaded deadline', async () => {
    const gw = await startTestGateway(backends, { upstreamUrl: `http://127.0.0.1:${blackHole.port}/mcp`, head: 'timeouts: { upstreamConnect: 200ms, upstreamResponse: 5s }' });
    try {
      const bearer = await gw.token();
      const before = await timedStatus(initialize(gw, bearer));
      expect(before.status).toBe(502);
      expect(before.ms).toBeLessThan(900);
      await gw.reload('timeouts: { upstreamConnect: 1200ms, upstreamResponse: 5s }');
      const after = await timedStatus(initialize(gw, bearer));
      expect(after.status).toBe(502);
      expect(after.ms).toBeGreaterThanOrEqual(1_150);
      expect(after.ms).toBeLessThan(4_000);
      expect(restartWarnings(gw)).toEqual([]);
    } finally {
      await gw.close();
    }
  });

  it('timeouts.issuerDiscovery: keys served in 600 ms are out of reach under 200ms, and fetched after a reload to 3s (the issuers are rebuilt)', async () => {
    const metadata = (await (await fetch(`${backends.idp.issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
    const jwks = await startDelayed(600, async () => ({ type: 'application/json', body: await (await fetch(metadata.jwks_uri)).text() }));
    const issuerExtra = `    jwksUri: ${jwks.url}/jwks`;
    const gw = await startTestGateway(backends, { issuerExtra, head: 'timeouts: { issuerDiscovery: 200ms }' });
    try {
      const bearer = await gw.token();
      const before = await initialize(gw, bearer);
      expect(before.status).toBe(503);
      await gw.reload('timeouts: { issuerDiscovery: 3s }');
      expect((await initialize(gw, bearer)).status).toBe(200);
      expect(restartWarnings(gw)).toEqual([]);
    } finally {
      await gw.close();
      await jwks.close();
    }
  });
});

describe('a reload that changes a listener-level limit', () => {
  let backends: Backends;
  beforeAll(async () => {
    backends = await startBackends();
  });
  afterAll(async () => {
    await backends?.close();
  });

  it('warns naming limits.maxHeaders and keeps it as started, while the body limit in the same reload is applied', async () => {
    const gw = await startTestGateway(backends, { head: 'limits: { maxBodyBytes: 4096, maxHeaders: 20 }' });
    const padding = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`x-pad-${i}`, 'x']));
    try {
      const bearer = await gw.token();
      expect((await initialize(gw, bearer, undefined, padding(30))).status).toBe(431);
      expect((await initialize(gw, bearer, 6000)).status).toBe(413);

      await gw.reload('limits: { maxBodyBytes: 8192, maxHeaders: 100 }');
      expect(restartWarnings(gw)).toEqual([
        expect.objectContaining({ level: 40, restartOnly: ['limits.maxHeaders'], msg: 'limits.maxHeaders change only on restart: kept as started; the rest of the new config is applied' }),
      ]);
      expect((await initialize(gw, bearer, undefined, padding(30))).status).toBe(431);
      expect((await initialize(gw, bearer, undefined, padding(3))).status).toBe(200);
      expect((await initialize(gw, bearer, 6000)).status).toBe(200);

      // Each later reload of a file that still differs says so again.
      await gw.reload('limits: { maxBodyBytes: 8192, maxHeaders: 100 }\ntimeouts: { idle: 2s }');
      expect(restartWarnings(gw).at(-1)).toMatchObject({ restartOnly: ['limits.maxHeaders', 'timeouts.idle'] });
      expect((await initialize(gw, bearer, undefined, padding(30))).status).toBe(431);
    } finally {
      await gw.close();
    }
  });
});
