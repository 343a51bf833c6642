import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnNode, type Child } from './children.js';

/** The built command line, as users run it (dist/bench/… → dist/src/bin.js). */
const BIN = fileURLToPath(new URL('../src/bin.js', import.meta.url));

/** Replicas behind one Service share the public origin, so one token (aud) works on each. */
export const PUBLIC_URL = 'http://localhost:8443';
export const RESOURCE = `${PUBLIC_URL}/mcp`;

/**
 * Every call needs todo:read, and list_todos carries a rate limit so each measured request also
 * pays the limiter's store round trip. 1,000,000 per minute never refuses at any rate this
 * benchmark reaches, yet keeps a real 60 µs GCRA interval (a budget above 60,000,000 per minute
 * rounds the interval down to zero microseconds, a degenerate limit).
 */
const POLICY = `scopes: [todo:read]
tools:
  list_todos:
    scopes: [todo:read]
    rateLimit: { requests: 1000000, per: 1m }
`;

export type StoreSpec = { readonly type: 'memory' } | { readonly type: 'redis'; readonly url: string; readonly keyPrefix: string };

export interface GatewaySpec {
  readonly name: string;
  readonly issuer: string;
  readonly upstreamUrl: string;
  readonly store: StoreSpec;
}

export interface RunningGateway {
  readonly child: Child;
  /** The MCP endpoint, e.g. http://127.0.0.1:PORT/mcp. */
  readonly url: string;
}

/** Writes the config (and the shared policy) into `dir`, starts the gateway, waits for /readyz. */
export async function startGatewayProcess(dir: string, spec: GatewaySpec): Promise<RunningGateway> {
  // At log level warn the gateway prints nothing when it starts listening, so the port is
  // chosen here rather than read back from its output.
  const port = await freePort();
  await writeFile(join(dir, 'policy.yaml'), POLICY);
  const configFile = join(dir, `${spec.name}.yaml`);
  const store =
    spec.store.type === 'memory'
      ? '{ type: memory }'
      : `{ type: redis, url: ${JSON.stringify(spec.store.url)}, keyPrefix: ${JSON.stringify(spec.store.keyPrefix)} }`;
  await writeFile(
    configFile,
    [
      `listen: { host: 127.0.0.1, port: ${port} }`,
      `publicUrl: ${PUBLIC_URL}`,
      `store: ${store}`,
      // warn: per-request access and authz lines are info, so nothing is logged on the hot path.
      'log: { level: warn }',
      'issuers:',
      `  - issuer: ${JSON.stringify(spec.issuer)}`,
      'routes:',
      `  - { name: todo, path: /mcp, upstream: ${JSON.stringify(spec.upstreamUrl)}, policy: policy.yaml }`,
      '',
    ].join('\n'),
  );
  const child = spawnNode(spec.name, BIN, ['--config', configFile]);
  await waitUntilReady(child, `http://127.0.0.1:${port}/readyz`);
  return { child, url: `http://127.0.0.1:${port}/mcp` };
}

/** Polls /readyz until 200: issuer keys fetched and the store answering. */
async function waitUntilReady(child: Child, readyUrl: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) break;
    try {
      const response = await fetch(readyUrl);
      last = `${response.status} ${await response.text()}`;
      if (response.status === 200) return;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await child.stop();
  throw new Error(`${child.name} did not become ready (${last}):\n${child.output.join('\n')}`);
}

/** A port free right now (the OS picks it); the gateway binds it moments later. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
