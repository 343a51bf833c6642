/**
 * An in-process gateway with one /mcp route whose upstream needs a credential of its own
 * (routes[].upstreamAuth, given as YAML), in a temporary directory that also holds the secret
 * files the test writes; every log line captured. For the upstream-credential tests (issue 26).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { captureLogs, waitForLogEntry } from './log-capture.js';
import { PROTOCOL_VERSION, toolCall } from './mcp-http.js';
import { TODO_POLICY } from './stack.js';

export interface UpstreamAuthGatewayOptions {
  readonly issuer: string;
  readonly upstreamUrl: string;
  /** The route's upstreamAuth, as YAML lines indented under it (6 spaces), e.g. `      static: { … }`. */
  readonly upstreamAuth: string;
  /** The store section as YAML flow text; default memory. */
  readonly store?: string;
  /** Secret files to write first, by name (relative to the config's directory). */
  readonly files?: Readonly<Record<string, string>>;
  /** timeouts.issuerDiscovery: also how long an exchange may take. Default 2s. */
  readonly idpTimeout?: string;
}

export interface UpstreamAuthGateway {
  readonly gateway: Gateway;
  readonly mcpUrl: string;
  /** Where the config and its files are. */
  readonly dir: string;
  readonly logs: Record<string, unknown>[];
  /** Resolves with the first log entry (from `from` on) matching, waiting up to `timeoutMs`. */
  waitForLog(match: (entry: Record<string, unknown>) => boolean, from?: number, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startUpstreamAuthGateway(options: UpstreamAuthGatewayOptions): Promise<UpstreamAuthGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gw-upauth-'));
  try {
    await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
    for (const [name, text] of Object.entries(options.files ?? {})) await writeFile(join(dir, name), text);
    const config = await parseConfig(
      join(dir, 'gateway.yaml'),
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        `store: ${options.store ?? '{ type: memory }'}`,
        `timeouts: { upstreamResponse: 5s, issuerDiscovery: ${options.idpTimeout ?? '2s'} }`,
        'issuers:',
        `  - issuer: ${options.issuer}`,
        'routes:',
        '  - name: todo',
        '    path: /mcp',
        `    upstream: ${options.upstreamUrl}`,
        '    policy: todo.yaml',
        '    upstreamAuth:',
        options.upstreamAuth,
      ].join('\n'),
    );
    const { logger, logs } = captureLogs();
    const gateway = await startGateway(config, { logger });
    return {
      gateway,
      mcpUrl: `${gateway.url}/mcp`,
      dir,
      logs,
      waitForLog: (match, from = 0, timeoutMs = 3_000) => waitForLogEntry(logs, match, from, timeoutMs),
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

/** A tools/call of list_todos (todo:read), with the client's token and any extra headers. */
export function callTool(mcpUrl: string, token: string, headers: Record<string, string> = {}, id: number | string = 1): Promise<Response> {
  return fetch(mcpUrl, {
    method: 'POST',
    headers: {
      ...headers,
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': PROTOCOL_VERSION,
    },
    body: JSON.stringify(toolCall(id, 'list_todos')),
  });
}
