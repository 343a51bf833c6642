import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { handleAuthorize } from './authorize.js';
import { handleCallback } from './callback.js';
import { handleConnect, handleConnectCallback } from './connect.js';
import { disconnect, showConnections } from './connections-page.js';
import { decideConsent, showConsent } from './consent.js';
import { authorizationServerMetadata } from './metadata.js';
import { handleRegistration } from './registration.js';
import { handleRevoke } from './revoke.js';
import type { AuthorizationServer } from './service.js';
import { handleToken } from './token-endpoint.js';

/**
 * What browser-based MCP clients call directly is readable across origins (RFC 8414 §3, the MCP
 * authorization spec's discovery): metadata, keys, token, registration, revocation. The
 * authorization, callback, consent and connected-account pages are top-level navigations and get
 * no CORS.
 */
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, POST, OPTIONS',
  'access-control-allow-headers': 'Content-Type, Authorization, MCP-Protocol-Version',
  'access-control-max-age': '86400',
};

type App = Hono<{ Bindings: HttpBindings }>;

/** Mounts the authorization server's endpoints on the gateway's main app (src/http/app.ts calls this). */
export function mountAuthorizationServer(app: App, as: AuthorizationServer): void {
  const { paths } = as;
  const metadata = JSON.stringify(authorizationServerMetadata(as));
  const jwks = JSON.stringify(as.keys.publicJwks);
  const document = (body: string) => () => new Response(body, { headers: { ...CORS, 'content-type': 'application/json', 'cache-control': 'public, max-age=300' } });
  app.on(['GET', 'HEAD'], paths.metadataPath, document(metadata));
  app.on(['GET', 'HEAD'], paths.jwks, document(jwks));
  const withCors = (handler: (as: AuthorizationServer, request: Request) => Promise<Response>) => async (c: { req: { raw: Request } }) => {
    const response = await handler(as, c.req.raw);
    for (const [name, value] of Object.entries(CORS)) response.headers.set(name, value);
    return response;
  };
  app.post(paths.token, withCors(handleToken));
  app.post(paths.revoke, withCors(handleRevoke));
  if (as.config.registration.dynamic) app.post(paths.register, withCors(handleRegistration));
  for (const path of [paths.metadataPath, paths.jwks, paths.token, paths.revoke, paths.register]) {
    app.options(path, () => new Response(null, { status: 204, headers: CORS }));
  }
  app.get(paths.authorize, (c) => handleAuthorize(as, c.req.raw));
  app.get(paths.callback, (c) => handleCallback(as, c.req.raw));
  app.get(paths.consent, (c) => showConsent(as, c.req.raw));
  app.post(paths.consent, (c) => decideConsent(as, c.req.raw));
  // Connected accounts (routes[].upstreamAuth.connectedAccount): pages a user's browser opens.
  if (as.connections && as.providers.size > 0) {
    app.get(paths.connect, (c) => handleConnect(as, c.req.raw));
    app.get(paths.connectCallback, (c) => handleConnectCallback(as, c.req.raw));
    app.get(paths.connections, (c) => showConnections(as, c.req.raw));
    app.post(paths.connections, (c) => disconnect(as, c.req.raw));
  }
}
