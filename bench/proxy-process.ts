/**
 * Child process: the baseline hop. A bare http-proxy-3 reverse proxy with no auth, no body
 * parsing and no store, over a keep-alive agent as src/proxy/forward.ts uses. Whatever the
 * gateway costs beyond this is the gateway's own work. Usage: proxy-process.js <upstream origin>.
 * Every path is forwarded as it is. Prints {"origin": …} once listening.
 */
import { Agent, createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxyServer } from 'http-proxy-3';
import { exitWithParent } from './child-lifetime.js';

const upstream = new URL(process.argv[2] ?? '');
// Idle SSE streams (the memory measurement) must not be cut by a request deadline.
const REQUEST_TIMEOUT_OFF = 0;
const agent = new Agent({ keepAlive: true, scheduling: 'lifo' });
const proxy = createProxyServer({ target: upstream.origin, agent, xfwd: false });

proxy.on('error', (_error, _req, res) => {
  // Answer like a gateway would rather than hanging the connection; the benchmark counts non-2xx.
  const response = res as ServerResponse;
  if (typeof response.writeHead === 'function' && !response.headersSent) response.writeHead(502).end();
  else response.destroy?.();
});

const server = createServer({ requestTimeout: REQUEST_TIMEOUT_OFF }, (req, res) => void proxy.web(req, res));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

exitWithParent(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  agent.destroy();
});
process.stdout.write(`${JSON.stringify({ origin: `http://127.0.0.1:${port}` })}\n`);
