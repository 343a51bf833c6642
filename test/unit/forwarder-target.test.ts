import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Forwarder } from '../../src/proxy/forward.js';

/**
 * The forwarder reads a route's upstream URL into request options once (its getters slice the
 * href anew on every read); a URL changed afterwards must still be followed, never the old copy.
 * Real sockets on 127.0.0.1: two upstreams that answer with what they were sent, and a front
 * server that forwards through the forwarder as the gateway does.
 */
describe('Forwarder: where each request goes', () => {
  const forwarder = new Forwarder();
  const servers: Server[] = [];
  const upstreamPorts: number[] = [];
  let frontPort = 0;
  let target: URL;

  const listening = async (server: Server): Promise<number> => {
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  };

  beforeAll(async () => {
    for (const upstream of [0, 1]) {
      const server = createServer((req, res) => res.end(JSON.stringify({ upstream, path: req.url, host: req.headers.host })));
      upstreamPorts.push(await listening(server));
    }
    const front = createServer((req, res) => {
      forwarder
        .forward(req, res, { target, forwardHeaders: new Set(), body: undefined, responseTimeoutMs: 5_000, connectTimeoutMs: 5_000, gatewayHeaders: {} })
        .then((upstream) => {
          res.writeHead(upstream.statusCode ?? 502);
          upstream.pipe(res);
        })
        .catch(() => res.writeHead(502).end());
    });
    frontPort = await listening(front);
  });

  afterAll(() => {
    forwarder.close();
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
  });

  const seenUpstream = async (): Promise<unknown> => {
    const response = await fetch(`http://127.0.0.1:${frontPort}/`, { headers: { connection: 'close' } });
    expect(response.status).toBe(200);
    return response.json();
  };

  it('sends a request to the URL as it is, and follows the URL when it is changed', async () => {
    const [first, second] = upstreamPorts as [number, number];
    target = new URL(`http://127.0.0.1:${first}/mcp?tenant=a`);
    expect(await seenUpstream()).toEqual({ upstream: 0, path: '/mcp?tenant=a', host: `127.0.0.1:${first}` });
    // Unchanged, asked again: the same upstream.
    expect(await seenUpstream()).toEqual({ upstream: 0, path: '/mcp?tenant=a', host: `127.0.0.1:${first}` });

    target.port = String(second);
    target.pathname = '/other';
    expect(await seenUpstream()).toEqual({ upstream: 1, path: '/other?tenant=a', host: `127.0.0.1:${second}` });
  });
});
