/**
 * A server of OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document;
 * MCP 2025-11-25 "Client ID Metadata Documents") for the authorization-server facade's tests: the
 * good document an MCP client publishes, and every bad answer the facade must survive (redirects,
 * oversized or slow bodies, wrong content types, a `client_id` that is not the document's URL).
 * Every request is recorded, so a test can prove a URL was never fetched, or fetched once.
 *
 * HTTPS, because a client_id URL must be https: the server listens on 127.0.0.1 with a
 * certificate for 127.0.0.1 and localhost from a throwaway CA made by openssl at start
 * (test/support/test-ca.ts). How the gateway under test trusts that CA:
 * - a gateway in a child process: start it with `childEnv()` (NODE_EXTRA_CA_CERTS, read by Node
 *   at start-up for every TLS client, fetch included);
 * - a gateway in the test's own process: `trustInProcess()` adds the CA to Node's default CA
 *   set (tls.setDefaultCACertificates) and returns the undo; a test worker is its own process,
 *   and the CA is valid one day for 127.0.0.1 and localhost only, so nothing else is affected;
 * - a client that takes TLS options: `httpsAgent` (node:https) or `caPem`.
 * The same routes are also served over plain HTTP (`httpUrl`), for the "https only" refusal and
 * its positive control. Loopback is a private address: the facade must be told to allow private
 * networks (`registration.allowPrivateNetworks`) for the good documents to be fetched at all.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';

import { createTestCertificates } from './test-ca.js';

/** What one path answers. Defaults: 200, application/json, the body JSON-encoded if an object. */
export interface CimdRoute {
  readonly status?: number;
  readonly body?: string | Buffer | Readonly<Record<string, unknown>>;
  /** Default `application/json`; null sends no Content-Type. */
  readonly contentType?: string | null;
  readonly headers?: Readonly<Record<string, string>>;
  /** Answer with a redirect to this URL (status default 302). */
  readonly redirectTo?: string;
  /** Wait this long before answering at all (status line included). */
  readonly delayMs?: number;
  /** Send the status, headers and the first half of the body, then nothing more until close. */
  readonly stallAfterHeaders?: boolean;
  /** Send the body chunked, without Content-Length (a size limit must count bytes, not trust a header). */
  readonly chunked?: boolean;
  /** ETag of the document; a request with a matching If-None-Match gets 304. */
  readonly etag?: string;
}

/** RFC 7591 client metadata, as a client ID metadata document carries it. */
export interface ClientMetadata {
  readonly client_name?: string;
  readonly redirect_uris: readonly string[];
  readonly grant_types?: readonly string[];
  readonly response_types?: readonly string[];
  readonly token_endpoint_auth_method?: string;
  readonly client_uri?: string;
  readonly logo_uri?: string;
  readonly scope?: string;
  readonly [member: string]: unknown;
}

export interface ServeClientOptions extends Omit<CimdRoute, 'body' | 'redirectTo'> {
  /** The document's `client_id`; default: its own URL, as the draft requires. */
  readonly clientId?: string;
  /** Pad the JSON (an extra member) to at least this many bytes, e.g. 5 KiB + 1 for a size limit. */
  readonly padToBytes?: number;
  /** Serve it at `https://localhost:PORT/…` (client_id included) instead of 127.0.0.1. */
  readonly host?: 'localhost' | '127.0.0.1';
}

export interface CimdRequest {
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly tls: boolean;
  readonly at: number;
}

export interface CimdServer {
  /** https://127.0.0.1:PORT */
  readonly origin: string;
  /** The throwaway CA's certificate, PEM, and its file. */
  readonly caPem: string;
  readonly caFile: string;
  /** A node:https agent that trusts the CA. */
  readonly httpsAgent: HttpsAgent;
  /** Every request, in arrival order, over https and http. */
  readonly requests: readonly CimdRequest[];
  /** https URL of `path` (on 127.0.0.1, or localhost). */
  url(path: string, host?: 'localhost' | '127.0.0.1'): string;
  /** The same path on the plain-HTTP listener. */
  httpUrl(path: string): string;
  /** Serves `route` at `path` (replacing what was there) and returns its https URL. */
  serve(path: string, route: CimdRoute): string;
  /** Serves a client ID metadata document at `path` and returns its URL, the client_id. */
  serveClient(path: string, metadata: ClientMetadata, options?: ServeClientOptions): string;
  /** The requests for `path` (query ignored). */
  requestsFor(path: string): CimdRequest[];
  /** Environment for a child-process gateway: trust the CA. */
  childEnv(): Record<string, string>;
  /** Trust the CA in this process for fetch and node:https; returns the undo. */
  trustInProcess(): () => void;
  /** Closes both listeners (and every connection, stalled ones too) and removes the CA files. */
  close(): Promise<void>;
}

export async function startCimdServer(): Promise<CimdServer> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gw-cimd-'));
  try {
    const certs = await createTestCertificates(dir, 'mcp-gateway-cimd-test-ca');
    const routes = new Map<string, CimdRoute>();
    const requests: CimdRequest[] = [];
    const timers = new Set<NodeJS.Timeout>();

    const handle = (tls: boolean) => (req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? '/';
      requests.push({ method: req.method ?? '', path, headers: { ...req.headers }, tls, at: Date.now() });
      const route = routes.get(path.split('?')[0]!);
      if (!route) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
        return;
      }
      if (!route.delayMs) return answer(req, res, route);
      const timer = setTimeout(() => {
        timers.delete(timer);
        answer(req, res, route);
      }, route.delayMs);
      timers.add(timer);
    };

    const https = createHttpsServer({ cert: certs.certPem, key: certs.keyPem }, handle(true));
    const http = createHttpServer(handle(false));
    const [httpsPort, httpPort] = [await listen(https), await listen(http)];
    const httpsAgent = new HttpsAgent({ ca: certs.caPem, keepAlive: false });
    const url = (path: string, host: 'localhost' | '127.0.0.1' = '127.0.0.1') => `https://${host}:${httpsPort}${path}`;
    const serve = (path: string, route: CimdRoute): string => {
      if (!path.startsWith('/')) throw new Error(`cimd server: path must start with /: ${path}`);
      routes.set(path, route);
      return url(path);
    };

    return {
      origin: `https://127.0.0.1:${httpsPort}`,
      caPem: certs.caPem,
      caFile: certs.caFile,
      httpsAgent,
      requests,
      url,
      httpUrl: (path) => `http://127.0.0.1:${httpPort}${path}`,
      serve,
      serveClient(path, metadata, options = {}) {
        const { clientId, padToBytes, host, ...route } = options;
        const own = url(path, host);
        const document: Record<string, unknown> = { client_id: clientId ?? own, ...metadata };
        serve(path, { ...route, body: padded(document, padToBytes) });
        return own;
      },
      requestsFor: (path) => requests.filter((r) => r.path.split('?')[0] === path),
      childEnv: () => ({ NODE_EXTRA_CA_CERTS: certs.caFile }),
      trustInProcess() {
        const before = getCACertificates('default');
        setDefaultCACertificates([...before, certs.caPem]);
        return () => setDefaultCACertificates(before);
      },
      async close() {
        for (const timer of timers) clearTimeout(timer);
        httpsAgent.destroy();
        await Promise.all([https, http].map(closeServer));
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function answer(req: IncomingMessage, res: ServerResponse, route: CimdRoute): void {
  if (route.redirectTo !== undefined) {
    res.writeHead(route.status ?? 302, { location: route.redirectTo, ...route.headers }).end();
    return;
  }
  const headers: Record<string, string> = { ...route.headers };
  if (route.contentType !== null) headers['content-type'] = route.contentType ?? 'application/json';
  if (route.etag !== undefined) {
    headers.etag = route.etag;
    if (req.headers['if-none-match'] === route.etag) {
      res.writeHead(304, headers).end();
      return;
    }
  }
  const body = route.body === undefined ? Buffer.alloc(0) : typeof route.body === 'string' || Buffer.isBuffer(route.body)
    ? Buffer.from(route.body)
    : Buffer.from(JSON.stringify(route.body));
  if (!route.chunked) headers['content-length'] = String(body.length);
  res.writeHead(route.status ?? 200, headers);
  if (route.stallAfterHeaders) {
    res.write(body.subarray(0, Math.floor(body.length / 2)));
    return; // never ends: closeAllConnections() on close() cuts it
  }
  if (route.chunked) {
    // Several writes, so the body really goes out in chunks.
    for (let at = 0; at < body.length; at += 1024) res.write(body.subarray(at, at + 1024));
    res.end();
    return;
  }
  res.end(body);
}

/** The document with a `padding` member making it at least `bytes` long (still valid JSON). */
function padded(document: Record<string, unknown>, bytes: number | undefined): Record<string, unknown> {
  const size = Buffer.byteLength(JSON.stringify(document));
  if (bytes === undefined || size >= bytes) return document;
  const overhead = Buffer.byteLength(JSON.stringify({ ...document, padding: '' })) - size;
  return { ...document, padding: randomBytes(bytes).toString('hex').slice(0, Math.max(0, bytes - size - overhead)) };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
