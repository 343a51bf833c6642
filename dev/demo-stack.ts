/**
 * What `npm run demo` starts (dev/demo.ts) and what it prints, apart from the process around it,
 * so a test can start the same pieces on free ports and run the printed commands
 * (test/dev/demo.test.ts). Never for production: the IdP logs anyone in.
 */
import type { GatewayConfig } from '../src/config/types.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import type { Logger } from '../src/observability/logger.js';
import { obtainAccessToken, startDevIdp, type DevIdp } from './idp.js';
import { startSampleUpstream, type SampleUpstream } from './upstream.js';

/** Whom the demo IdP logs in when nobody says otherwise (the MCP Inspector never does). */
export const DEMO_USER = 'demo-user';
/**
 * The demo user's claims besides the standard ones: gateway.example.yaml's `admin_*` tools are
 * for members of `ops` only (`when: { claims: { groups: [ops] } }`).
 */
export const DEMO_USER_CLAIMS = { groups: ['ops'] };

const TOKEN_TTL_SECONDS = 3600;
const INSPECTOR = 'npx @modelcontextprotocol/inspector';

export interface DemoOptions {
  /** 'configured': the addresses the config names (npm run demo); 'ephemeral': free loopback ports. */
  readonly ports: 'configured' | 'ephemeral';
  /** The gateway's logger; default: JSON lines on stdout at the config's level. */
  readonly logger?: Logger;
}

export interface Demo {
  readonly idp: DevIdp;
  readonly upstream: SampleUpstream;
  readonly gateway: Gateway;
  /** The route's resource URL: where clients connect, and the tokens' audience. */
  readonly resource: string;
  /** What the demo prints: where everything is, how to connect, ready-made tokens and commands. */
  readonly instructions: string;
  close(): Promise<void>;
}

/** Starts the dev IdP, the sample upstream and the gateway for the config's first issuer and route. */
export async function startDemo(config: GatewayConfig, options: DemoOptions): Promise<Demo> {
  const issuer = new URL(config.issuers[0]!.issuer);
  const upstreamUrl = config.routes[0]!.upstream;
  const ephemeral = options.ports === 'ephemeral';
  const idp = await startDevIdp({
    host: issuer.hostname,
    port: ephemeral ? 0 : Number(issuer.port),
    scopes: [...new Set(config.routes.flatMap((r) => r.policy.scopesSupported))],
    defaultSubject: DEMO_USER,
    accountClaims: { [DEMO_USER]: DEMO_USER_CLAIMS },
    accessTokenTtlSeconds: TOKEN_TTL_SECONDS,
  });
  const upstream = await startSampleUpstream({
    host: upstreamUrl.hostname,
    port: ephemeral ? 0 : Number(upstreamUrl.port),
    path: upstreamUrl.pathname,
    responseMode: 'sse',
  });
  const served: GatewayConfig = ephemeral
    ? {
        ...config,
        listen: { ...config.listen, port: 0 },
        publicUrl: undefined,
        issuers: config.issuers.map((entry, i) => (i === 0 ? { ...entry, issuer: idp.issuer } : entry)),
        routes: config.routes.map((route, i) => (i === 0 ? { ...route, upstream: new URL(upstream.url) } : route)),
      }
    : config;
  const gateway = await startGateway(served, options.logger ? { logger: options.logger } : {});
  const route = served.routes[0]!;
  const resource = `${gateway.publicUrl}${route.path}`;
  const token = async (scope: string) => (await obtainAccessToken(idp, { resource, scope, subject: DEMO_USER })).accessToken;
  const routeScopes = route.policy.routeScopes.join(' ');
  const tokens = { read: await token(routeScopes), admin: await token(`${routeScopes} todo:admin`) };
  return {
    idp,
    upstream,
    gateway,
    resource,
    instructions: instructions({ idp: idp.issuer, upstream: upstream.url, resource, routeScopes, tokens }),
    async close() {
      await gateway.close();
      await upstream.close();
      await idp.close();
    },
  };
}

interface Printed {
  idp: string;
  upstream: string;
  resource: string;
  routeScopes: string;
  tokens: { read: string; admin: string };
}

/**
 * Commands are printed one to a line, as they are to be pasted; test/dev/demo.test.ts runs each
 * of them, so a command that stops working here fails there.
 */
function instructions({ idp, upstream, resource, routeScopes, tokens }: Printed): string {
  const inspectorCli = `${INSPECTOR} --cli ${resource} --transport http`;
  const bearer = (name: string) => `--header "Authorization: Bearer $${name}"`;
  const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add_todo', arguments: { title: 'milk' } } });
  return `
mcp-auth-gateway demo is running
  IdP (development)                 ${idp}  logs everyone in as ${DEMO_USER}, a member of group ${DEMO_USER_CLAIMS.groups[0]}
  upstream MCP server (no auth)     ${upstream}
  gateway (protects the upstream)   ${resource}

The MCP Inspector (Node.js 22.19 or later) runs the OAuth flow by itself: discovery, client
registration, PKCE; the IdP answers its login page without asking anything.
  web UI:  ${INSPECTOR} --transport http --server-url ${resource}
           then, on the page it opens, switch the server on (the toggle on its card)
  CLI:     ${inspectorCli} --method tools/list
           (open the login page it names; the CLI gets the code back on 127.0.0.1:6276)

Or with ready-made tokens for ${DEMO_USER} (valid ${TOKEN_TTL_SECONDS / 60} minutes), one for scope "${routeScopes}", one adding todo:admin:
  TOKEN=${tokens.read}
  ADMIN_TOKEN=${tokens.admin}

List the tools with "${routeScopes}":
  ${inspectorCli} ${bearer('TOKEN')} --method tools/list

The step-up: add_todo needs todo:write as well, so this gets 403 insufficient_scope, scope="${routeScopes} todo:write":
  curl -si ${resource} -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' -d '${call}'

The admin_* tools need todo:admin, and a groups claim naming ops (${DEMO_USER}'s does):
  ${inspectorCli} ${bearer('ADMIN_TOKEN')} --method tools/call --tool-name admin_stats

Ctrl-C stops everything.
`;
}
