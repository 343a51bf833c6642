/**
 * A bare node:http MCP upstream that needs a credential of its own, as an API behind an MCP
 * server would (issue 26): it verifies a bearer JWT with its issuer's real JWKS (fetched from
 * the IdP), or compares a configured header with the secret it expects, answers 401 otherwise
 * (or when a test revoked that credential), and records every request it received, so a test
 * can tell what reached it and what never did. Accepted JSON-RPC requests get an empty result.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

export type CredentialCheck =
  | { readonly kind: 'jwt'; readonly jwksUri: string; readonly issuer: string; readonly audiences: readonly string[] }
  | { readonly kind: 'header'; readonly name: string; readonly value: () => string };

export interface ReceivedRequest {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The credential as it arrived (the checked header's value). */
  readonly credential: string | undefined;
  readonly accepted: boolean;
  /** The verified token's claims (jwt check). */
  readonly claims?: JWTPayload;
}

export interface CredentialUpstream {
  readonly url: string;
  readonly received: ReceivedRequest[];
  /** Credentials (header values) answered 401 from now on, as if expired or revoked upstream. */
  readonly revoked: Set<string>;
  /** Answer every request 401 (a credential the upstream will not take at all). */
  refuseAll: boolean;
  close(): Promise<void>;
}

export async function startCredentialUpstream(check: CredentialCheck): Promise<CredentialUpstream> {
  const received: ReceivedRequest[] = [];
  const revoked = new Set<string>();
  const state = { refuseAll: false };
  const keys = check.kind === 'jwt' ? createRemoteJWKSet(new URL(check.jwksUri)) : undefined;

  const verify = async (headers: IncomingHttpHeaders): Promise<{ credential: string | undefined; claims?: JWTPayload; ok: boolean }> => {
    if (check.kind === 'header') {
      const credential = headers[check.name] as string | undefined;
      return { credential, ok: credential === check.value() };
    }
    const credential = headers.authorization;
    const token = /^Bearer (.+)$/.exec(credential ?? '')?.[1];
    if (!token) return { credential, ok: false };
    try {
      const { payload } = await jwtVerify(token, keys!, { issuer: check.issuer, audience: [...check.audiences] });
      return { credential, claims: payload, ok: true };
    } catch {
      return { credential, ok: false };
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const { credential, claims, ok } = await verify(req.headers);
        const accepted = ok && !state.refuseAll && !(credential !== undefined && revoked.has(credential));
        received.push({ method: req.method ?? '', headers: req.headers, body, credential, accepted, ...(claims ? { claims } : {}) });
        if (!accepted) {
          res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' });
          res.end('{"error":"invalid_token"}');
          return;
        }
        if (req.method !== 'POST') {
          res.writeHead(405, { allow: 'POST' }).end();
          return;
        }
        const message = JSON.parse(body) as { id?: string | number };
        if (message.id === undefined) {
          res.writeHead(202).end();
          return;
        }
        const answer = JSON.stringify({ jsonrpc: '2.0', id: message.id, result: {} });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
        res.end(answer);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    received,
    revoked,
    get refuseAll() {
      return state.refuseAll;
    },
    set refuseAll(value: boolean) {
      state.refuseAll = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
