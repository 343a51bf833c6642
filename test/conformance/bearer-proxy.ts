/**
 * Test support: a loopback forward proxy that adds `Authorization: Bearer <token>` to every
 * request and otherwise passes requests and responses through untouched, streamed as they come.
 *
 * It exists because the MCP conformance suite's `server` command has no way to send extra
 * headers, and the gateway refuses a request without a token. Everything else the suite sends
 * (Host, Origin, the MCP headers, malformed values) must reach the gateway as sent, so nothing
 * else is rewritten. Never use it outside tests: it hands one token to anyone on loopback.
 */
import { createServer, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BearerProxy {
  /** http://127.0.0.1:PORT: the origin clients talk to (and the gateway must allow). */
  readonly origin: string;
  /** Where requests go (an origin; the client's path is kept) and the token they carry. */
  route(target: string, token: string): void;
  close(): Promise<void>;
}

// RFC 9110 §7.6.1: connection-specific, so each hop sets its own.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const kept: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  }
  return kept;
}

export async function startBearerProxy(): Promise<BearerProxy> {
  let target: URL | undefined;
  let token = '';

  const server = createServer((req, res) => {
    if (!target) {
      res.writeHead(503).end('proxy not routed yet');
      return;
    }
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...endToEnd(req.headers), authorization: `Bearer ${token}` } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        // SSE: the status line and headers must reach the client before the first event does.
        res.flushHeaders();
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end('upstream unreachable');
      else res.destroy();
    });
    // A client that hangs up (the suite aborts listen streams on a timer) ends the upstream request too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    route(to, bearer) {
      target = new URL(to);
      token = bearer;
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
