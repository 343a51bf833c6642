import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { captureLogs } from './log-capture.js';

/** The example policy's rules, as the e2e tests rely on them. */
export const TODO_POLICY = `
scopes: [todo:read]
tools:
  list_todos: [todo:read]
  add_todo: [todo:write]
  delete_todo: [todo:write]
  slow_progress: [todo:read]
  "admin_*": [todo:admin]
  secret_tool: deny
`;

export const IDP_SCOPES = ['todo:read', 'todo:write', 'todo:admin', 'other:scope'];

export interface StackOptions {
  readonly responseMode: 'json' | 'sse';
  readonly signingAlg?: 'RS256' | 'ES256';
  readonly stateless?: boolean;
  readonly policy?: string;
  /** Extra top-level config YAML (e.g. allowedOrigins, timeouts). */
  readonly extraConfig?: string;
  /** Extra keys of the route, as YAML lines indented under it (e.g. `    audit: { arguments: true }`). */
  readonly routeConfig?: string;
  /** Point the route at this URL instead of the sample upstream. */
  readonly upstreamUrl?: string;
  /** Lifetime of the IdP's access tokens (default 600 s). */
  readonly accessTokenTtlSeconds?: number;
  /** Extra access-token claims per subject (see DevIdpOptions.accountClaims). */
  readonly accountClaims?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Serve the sample upstream's URI spelling fixtures (see SampleUpstreamOptions.uriFixtures). */
  readonly uriFixtures?: boolean;
}

/** A real IdP, a real SDK upstream and the gateway in front of it, all on ephemeral loopback ports. */
export interface Stack {
  readonly idp: DevIdp;
  readonly upstream: SampleUpstream;
  readonly gateway: Gateway;
  /** The MCP endpoint clients use: gateway URL + /mcp. */
  readonly mcpUrl: string;
  /** Every log entry the gateway wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const idp = await startDevIdp({
    scopes: IDP_SCOPES,
    signingAlg: options.signingAlg ?? 'RS256',
    ...(options.accessTokenTtlSeconds ? { accessTokenTtlSeconds: options.accessTokenTtlSeconds } : {}),
    ...(options.accountClaims ? { accountClaims: options.accountClaims } : {}),
  });
  const upstream = await startSampleUpstream({ responseMode: options.responseMode, stateless: options.stateless ?? false, uriFixtures: options.uriFixtures ?? false });
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gw-'));
  await writeFile(join(dir, 'todo.yaml'), options.policy ?? TODO_POLICY);
  const configText = [
    'listen: { host: 127.0.0.1, port: 0 }',
    'store: { type: memory }',
    options.extraConfig?.includes('timeouts:') ? '' : 'timeouts: { upstreamResponse: 2s }',
    options.extraConfig ?? '',
    'issuers:',
    `  - issuer: ${idp.issuer}`,
    'routes:',
    '  - name: todo',
    '    path: /mcp',
    `    upstream: ${options.upstreamUrl ?? upstream.url}`,
    '    policy: todo.yaml',
    options.routeConfig ?? '',
  ].join('\n');
  const config = await parseConfig(join(dir, 'gateway.yaml'), configText);
  const { logger, logs } = captureLogs();
  const gateway = await startGateway(config, { logger });
  return {
    idp,
    upstream,
    gateway,
    mcpUrl: `${gateway.url}/mcp`,
    logs,
    async close() {
      await gateway.close();
      await upstream.close();
      await idp.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
