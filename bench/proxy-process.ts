/**
 * Child process: a baseline hop with no auth, no body parsing and no store, over a keep-alive
 * agent. Whatever the gateway costs beyond this is the gateway's own work.
 * Usage: proxy-process.js <upstream origin> [http-proxy-3|node-http|undici].
 * - http-proxy-3 (row b): a bare http-proxy-3 reverse proxy.
 * - node-http (row b-node): node:http's own `request()` piped both ways, the path the gateway uses.
 * - undici (row b-undici): an undici `Pool` (keep-alive, no pipelining), answers piped back.
 * Every path is forwarded as it is. Prints {"origin": …} once listening.
 */
import { Agent, createServer, request, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxyServer } from 'http-proxy-3';
import { Pool } from 'undici';
import { exitWithParent } from './child-lifetime.js';

const upstream = new URL(process.argv[2] ?? '');
const kind = process.argv[3] ?? 'http-proxy-3';
// Idle SSE streams (the memory measurement) must not be cut by a request deadline.
const REQUEST_TIMEOUT_OFF = 0;
const agent = new Agent({ keepAlive: true, scheduling: 'lifo' });

/** Answer like a gateway would rather than hanging the connection; the benchmark counts non-2xx. */
function badGateway(res: ServerResponse): void {
  if (!res.headersSent) res.writeHead(502).end();
  else res.destroy();
}

function httpProxy3Hop(): RequestListener {
  const proxy = createProxyServer({ target: upstream.origin, agent, xfwd: false });
  proxy.on('error', (_error, _req, res) => {
    const response = res as ServerResponse;
    if (typeof response.writeHead === 'function') badGateway(response);
    else response.destroy?.();
  });
  return (req, res) => void proxy.web(req, res);
}

function nodeHttpHop(): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const headers = { ...req.headers, host: upstream.host };
    delete headers.connection;
    const upstreamRequest = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstreamRequest.on('error', () => badGateway(res));
    res.on('close', () => upstreamRequest.destroy());
    req.pipe(upstreamRequest);
  };
}

/** Headers undici refuses to send (it manages the connection itself). */
const NOT_FOR_UNDICI = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'host']);

function undiciHop(): RequestListener {
  const pool = new Pool(upstream.origin, { pipelining: 1 });
  return (req: IncomingMessage, res: ServerResponse) => {
    const headers: Record<string, string | string[]> = { host: upstream.host };
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !NOT_FOR_UNDICI.has(name)) headers[name] = value;
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'DELETE';
    pool
      .request({ path: req.url ?? '/', method: req.method as 'GET', headers, body: hasBody ? req : null })
      .then(({ statusCode, headers: answerHeaders, body }) => {
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(answerHeaders)) if (value !== undefined && !NOT_FOR_UNDICI.has(name)) out[name] = value;
        res.writeHead(statusCode, out);
        // A client that leaves aborts the answer; the abort surfaces as an error on the body.
        body.on('error', () => res.destroy());
        res.on('close', () => body.destroy());
        body.pipe(res);
      })
      .catch(() => badGateway(res));
  };
}

const hops: Record<string, () => RequestListener> = { 'http-proxy-3': httpProxy3Hop, 'node-http': nodeHttpHop, undici: undiciHop };
const server = createServer({ requestTimeout: REQUEST_TIMEOUT_OFF }, (hops[kind] ?? httpProxy3Hop)());
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

exitWithParent(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  agent.destroy();
});
process.stdout.write(`${JSON.stringify({ origin: `http://127.0.0.1:${port}` })}\n`);
