import { createServer as createHttpServer, IncomingMessage, type Server, type ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { ServerConfig } from '../config/types.js';
import { Refusal } from '../errors.js';
import { GatewayResponse } from './gateway-response.js';
import { writeRefusal } from './refusal.js';

/**
 * The main listener, hardened like the proxies ops already trust: a bounded request head
 * (431), a bounded header count (431), deadlines to send the head and the whole request (408,
 * against slowloris), an idle keep-alive timeout, a connection cap, and Node's strict HTTP
 * parser (never `insecureHTTPParser`: ambiguous framing such as Content-Length with
 * Transfer-Encoding, duplicate Content-Length, obs-fold or a bare CR is refused with 400 and the
 * connection closed, so requests cannot be smuggled past the gateway). The explicit `false`
 * also beats a process-wide `--insecure-http-parser`. HTTPS when `tls` is set.
 *
 * `timeouts.idle` is Node's `keepAliveTimeout`, which Node advertises as `Keep-Alive: timeout=`
 * and enforces up to a second later (its HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER, so that a client
 * reusing the connection at the advertised deadline never races the close).
 */
export function createListener(config: ServerConfig, handler: (req: IncomingMessage, res: GatewayResponse) => void): Server {
  const options: ServerOptions<typeof IncomingMessage, typeof GatewayResponse> = {
    // Each response holds its request's record (src/http/gateway-response.ts).
    ServerResponse: GatewayResponse,
    maxHeaderSize: config.maxHeaderBytes,
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.idleTimeoutMs,
    // How often the head and request deadlines are checked: a tenth of the shorter, at most 1 s.
    connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(config.headersTimeoutMs / 10))),
    insecureHTTPParser: false,
    requireHostHeader: true,
  };
  const guarded = refuseTooManyHeaders(config.maxHeaders, handler);
  const server = config.tls
    ? createHttpsServer(
        {
          ...options,
          cert: config.tls.cert,
          key: config.tls.key,
          // The head deadline starts only once the TLS handshake is done: without this a client
          // that opens a connection and never finishes its handshake would hold it (and a slot
          // under maxConnections) for Node's default of 120 s.
          handshakeTimeout: config.headersTimeoutMs,
        },
        guarded,
      )
    : createHttpServer(options, guarded);
  // Node drops headers past maxHeadersCount silently; one more is kept so the guard can see
  // that the limit was passed and refuse instead.
  server.maxHeadersCount = config.maxHeaders + 1;
  server.maxConnections = config.maxConnections;
  return server as unknown as Server;
}

function refuseTooManyHeaders(maxHeaders: number, handler: (req: IncomingMessage, res: GatewayResponse) => void): (req: IncomingMessage, res: GatewayResponse) => void {
  return (req, res) => {
    if (req.rawHeaders.length / 2 > maxHeaders) {
      res.shouldKeepAlive = false;
      writeRefusal(res, new Refusal('too_many_headers', `More than ${maxHeaders} request headers`));
      return;
    }
    handler(req, res);
  };
}
