/**
 * An MCP server that acts with the user's token at a third-party service, as a GitHub MCP server
 * does (issue 26, connected accounts): in front of the real sample MCP server, it asks the
 * service who the token in `Authorization` belongs to (GitHub's `GET /user`, here the GitHub
 * stand-in's), answers 401 when the service does not know it, and passes everything else on to
 * the sample server. Every request is recorded with the credential and whose it was, so a test
 * can tell what reached the upstream and what never did.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

export interface CheckedRequest {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly credential: string | undefined;
  /** The service's login of the token's owner; undefined when it refused the token. */
  readonly login: string | undefined;
}

export interface ProviderCheckedUpstream {
  readonly url: string;
  readonly received: CheckedRequest[];
  close(): Promise<void>;
}

/** Hop-by-hop and framing headers are the proxy's own, not the request's (RFC 9110 §7.6.1). */
const NOT_PASSED = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'authorization']);

export async function startProviderCheckedUpstream(options: { target: string; userApi: string }): Promise<ProviderCheckedUpstream> {
  const received: CheckedRequest[] = [];
  const whoIs = async (credential: string | undefined): Promise<string | undefined> => {
    if (credential === undefined) return undefined;
    const answer = await fetch(options.userApi, { headers: { authorization: credential, 'user-agent': 'provider-checked-upstream', accept: 'application/json' } });
    if (answer.status !== 200) return undefined;
    return ((await answer.json()) as { login?: string }).login;
  };
  const server = createServer((req, res) => {
    void (async () => {
      const credential = req.headers.authorization;
      const login = await whoIs(credential).catch(() => undefined);
      received.push({ method: req.method ?? '', headers: req.headers, credential, login });
      if (login === undefined) {
        req.resume();
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' }).end('{"message":"Bad credentials"}');
        return;
      }
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => !NOT_PASSED.has(name)).map(([name, value]) => [name, String(value)]));
      const body = req.method === 'POST' ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined;
      const answer = await fetch(options.target, { method: req.method ?? 'GET', headers, ...(body ? { body, duplex: 'half' } : {}) } as RequestInit);
      const answerHeaders = Object.fromEntries([...answer.headers].filter(([name]) => !NOT_PASSED.has(name)));
      res.writeHead(answer.status, answerHeaders);
      if (!answer.body) return void res.end();
      const stream = Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream<Uint8Array>);
      res.on('close', () => stream.destroy());
      stream.pipe(res);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
