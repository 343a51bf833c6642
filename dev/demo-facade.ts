/**
 * `npm run demo:facade` (dev/demo.ts --facade): the gateway as the authorization server MCP
 * clients see (issue 25), in front of a development IdP that behaves like Microsoft Entra ID: no
 * client registration, RFC 8707 `resource` refused, one confidential client (the gateway's). MCP
 * clients register with the gateway instead, log in at the IdP through it, and are approved on
 * the gateway's consent page. Configured by gateway.facade.example.yaml; test/dev/demo-facade.test.ts
 * runs what it prints. Never for production: the IdP logs anyone in.
 */
import type { GatewayConfig } from '../src/config/types.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { DEMO_USER, DEMO_USER_CLAIMS, type DemoOptions } from './demo-stack.js';
import { startDevIdp, type DevIdp } from './idp.js';
import { startSampleUpstream, type SampleUpstream } from './upstream.js';

const INSPECTOR = 'npx @modelcontextprotocol/inspector';

export interface FacadeDemo {
  readonly idp: DevIdp;
  readonly upstream: SampleUpstream;
  readonly gateway: Gateway;
  /** The gateway's issuer as an authorization server. */
  readonly issuer: string;
  /** The route's resource URL: where clients connect, and the tokens' audience. */
  readonly resource: string;
  /** What the demo prints: where everything is and how to connect. */
  readonly instructions: string;
  close(): Promise<void>;
}

/** The tenant id of an Entra v2.0 issuer `http(s)://host/<tenant>/v2.0`, which the dev IdP serves under. */
function entraTenant(issuer: string): string {
  const tenant = /^\/([^/]+)\/v2\.0$/.exec(new URL(issuer).pathname)?.[1];
  if (!tenant) throw new Error(`the facade demo's authorizationServer.upstream.issuer must look like http://127.0.0.1:PORT/<tenant id>/v2.0, not '${issuer}'`);
  return tenant;
}

/** Starts the Entra-like dev IdP, the sample upstream and the gateway as authorization server for the config's first route. */
export async function startFacadeDemo(config: GatewayConfig, options: DemoOptions): Promise<FacadeDemo> {
  const as = config.authorizationServer;
  if (as?.upstream.preset !== 'entra' || as.upstream.issuer === undefined) {
    throw new Error('the facade demo needs authorizationServer with upstream preset entra and an issuer (see gateway.facade.example.yaml)');
  }
  const idpIssuer = new URL(as.upstream.issuer);
  const upstreamUrl = config.routes[0]!.upstream;
  const ephemeral = options.ports === 'ephemeral';
  const idp = await startDevIdp({
    host: idpIssuer.hostname,
    port: ephemeral ? 0 : Number(idpIssuer.port),
    scopes: [],
    defaultSubject: DEMO_USER,
    entra: {
      tenantId: entraTenant(as.upstream.issuer),
      client: { clientId: as.upstream.clientId, clientSecret: as.upstream.clientSecret },
      accounts: { [DEMO_USER]: { groups: DEMO_USER_CLAIMS.groups } },
    },
  });
  const stops: (() => Promise<void>)[] = [() => idp.close()];
  const close = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  try {
    const upstream = await startSampleUpstream({
      host: upstreamUrl.hostname,
      port: ephemeral ? 0 : Number(upstreamUrl.port),
      path: upstreamUrl.pathname,
      responseMode: 'sse',
    });
    stops.push(() => upstream.close());
    const served: GatewayConfig = ephemeral
      ? {
          ...config,
          listen: { ...config.listen, port: 0 },
          publicUrl: undefined,
          authorizationServer: { ...as, issuer: undefined, upstream: { ...as.upstream, issuer: idp.issuer } },
          routes: config.routes.map((route, i) => (i === 0 ? { ...route, upstream: new URL(upstream.url) } : route)),
        }
      : config;
    const gateway = await startGateway(served, options.logger ? { logger: options.logger } : {});
    stops.push(() => gateway.close());
    const issuer = served.authorizationServer!.issuer ?? gateway.publicUrl;
    // The app registration's redirect URI, as an administrator registers it at Entra.
    await idp.entra!.setRedirectUris([`${issuer}/oauth/callback`]);
    const resource = `${gateway.publicUrl}${served.routes[0]!.path}`;
    return {
      idp,
      upstream,
      gateway,
      issuer,
      resource,
      instructions: instructions({ idp: idp.issuer, clientId: as.upstream.clientId, upstream: upstream.url, issuer, resource }),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

interface Printed {
  idp: string;
  clientId: string;
  upstream: string;
  issuer: string;
  resource: string;
}

/**
 * Commands are printed one to a line, as they are to be pasted; test/dev/demo-facade.test.ts
 * runs each of them, so a command that stops working here fails there.
 */
function instructions({ idp, clientId, upstream, issuer, resource }: Printed): string {
  const registration = JSON.stringify({
    client_name: 'my MCP client',
    redirect_uris: ['http://127.0.0.1:6274/oauth/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'none',
  });
  return `
mcp-auth-gateway demo: the gateway as authorization server
  IdP (development, like Entra ID)  ${idp}
                                    no client registration, refuses RFC 8707 resource; knows one client, the gateway's (${clientId})
                                    logs everyone in as ${DEMO_USER}, a member of group ${DEMO_USER_CLAIMS.groups[0]}
  upstream MCP server (no auth)     ${upstream}
  gateway (authorization server)    ${issuer}
  gateway (protects the upstream)   ${resource}

The IdP's metadata names no registration endpoint; the gateway's names one, and Client ID Metadata Documents:
  curl -s ${idp}/.well-known/openid-configuration
  curl -s ${issuer}/.well-known/oauth-authorization-server

The MCP Inspector (Node.js 22.19 or later) registers with the gateway by itself, sends you to the
IdP, which logs you in without asking, then shows you the gateway's consent page: choose Allow.
  web UI:  ${INSPECTOR} --transport http --server-url ${resource}
           then, on the page it opens, switch the server on (the toggle on its card)
  CLI:     ${INSPECTOR} --cli ${resource} --transport http --method tools/list
           (open the login page it names; the CLI gets the code back on 127.0.0.1:6276)

What the Inspector does first, by hand: register a client with the gateway (RFC 7591):
  curl -s ${issuer}/oauth/register -H 'content-type: application/json' -d '${registration}'

Scopes are granted at login from the IdP's groups claim: everyone gets todo:read and todo:write,
members of ${DEMO_USER_CLAIMS.groups[0]} todo:admin as well, which the admin_* tools need (calling one asks for it, and for consent).

Ctrl-C stops everything.
`;
}
