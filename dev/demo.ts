/**
 * `npm run demo`: a development IdP, the sample todo MCP server and the gateway, all on
 * loopback, configured by gateway.example.yaml. Prints how to get a token and connect.
 * For trying the gateway out; never for production (the IdP logs anyone in).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { ConfigError } from '../src/config/problems.js';
import { startGateway } from '../src/gateway.js';
import { obtainAccessToken, startDevIdp } from './idp.js';
import { startSampleUpstream } from './upstream.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const configFile = process.env.DEMO_CONFIG ?? join(root, 'gateway.example.yaml');

async function main(): Promise<void> {
  const config = await loadConfig(configFile);
  const issuer = new URL(config.issuers[0]!.issuer);
  const upstreamUrl = config.routes[0]!.upstream;
  const idp = await startDevIdp({
    host: issuer.hostname,
    port: Number(issuer.port),
    scopes: [...new Set(config.routes.flatMap((r) => r.policy.scopesSupported))],
  });
  const upstream = await startSampleUpstream({
    host: upstreamUrl.hostname,
    port: Number(upstreamUrl.port),
    path: upstreamUrl.pathname,
    responseMode: 'sse',
  });
  const gateway = await startGateway(config);
  const resource = `${gateway.publicUrl}${config.routes[0]!.path}`;
  const { accessToken } = await obtainAccessToken(idp, { resource, scope: 'todo:read', subject: 'demo-user' });

  process.stdout.write(`
mcp-auth-gateway demo is running
  IdP (development, logs anyone in)  ${idp.issuer}
  upstream MCP server (no auth)      ${upstream.url}
  gateway (protects the upstream)    ${resource}

Connect with the MCP Inspector, which does the OAuth flow itself (discovery, registration, PKCE):
  npx @modelcontextprotocol/inspector
  → Transport: Streamable HTTP, URL: ${resource}, then "Open Auth Settings" → Quick OAuth Flow

Or by hand with a token for scope "todo:read" (valid 10 minutes):
  TOKEN=${accessToken}
  curl -si ${resource} -H "Authorization: Bearer $TOKEN" \\
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \\
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
  Without the header you get 401 and the challenge; calling add_todo with this token gets 403
  insufficient_scope asking for "todo:read todo:write".

Ctrl-C stops everything.
`);

  const stop = async () => {
    await gateway.close();
    await upstream.close();
    await idp.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((error: unknown) => {
  process.stderr.write(`demo: ${error instanceof ConfigError ? error.message : ((error as Error).stack ?? String(error))}\n`);
  process.exit(1);
});
