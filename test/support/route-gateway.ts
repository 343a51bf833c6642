/**
 * An in-process gateway with one /mcp route, built from YAML the test writes (top-level keys
 * and extra route keys), in its own temporary directory, with every log line captured.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { TODO_POLICY } from './stack.js';
import { captureLogs, waitForLogEntry } from './log-capture.js';

export interface RouteGatewayOptions {
  readonly issuer: string;
  readonly upstreamUrl: string;
  /** Top-level YAML placed before `issuers:` (trustedProxies, identityToken…). */
  readonly head?: string;
  /** Extra keys of the one route, as YAML lines indented for the route mapping (4 spaces). */
  readonly routeExtra?: string;
  /** The route's policy (default: the example todo policy). */
  readonly policy?: string;
}

export interface RouteGateway {
  readonly gateway: Gateway;
  /** gateway url + /mcp: the route's resource URL. */
  readonly mcpUrl: string;
  /** Every log entry the gateway wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Resolves with the first log entry matching `match`, waiting for it up to `timeoutMs`. */
  waitForLog(match: (entry: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export function routeGatewayConfig(options: RouteGatewayOptions): string {
  return [
    'listen: { host: 127.0.0.1, port: 0 }',
    'store: { type: memory }',
    'timeouts: { upstreamResponse: 5s }',
    options.head ?? '',
    'issuers:',
    `  - issuer: ${options.issuer}`,
    'routes:',
    '  - name: todo',
    '    path: /mcp',
    `    upstream: ${options.upstreamUrl}`,
    '    policy: todo.yaml',
    options.routeExtra ?? '',
  ].join('\n');
}

export async function startRouteGateway(options: RouteGatewayOptions): Promise<RouteGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gw-route-'));
  try {
    await writeFile(join(dir, 'todo.yaml'), options.policy ?? TODO_POLICY);
    const config = await parseConfig(join(dir, 'gateway.yaml'), routeGatewayConfig(options));
    const { logger, logs } = captureLogs();
    const gateway = await startGateway(config, { logger });
    return {
      gateway,
      mcpUrl: `${gateway.url}/mcp`,
      logs,
      waitForLog: (match, timeoutMs = 2_000) => waitForLogEntry(logs, match, 0, timeoutMs),
      async close() {
        await gateway.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
