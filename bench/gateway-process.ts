import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnNodeLoggingToReader, type Child } from './children.js';
import { HIDDEN_TOOL_PREFIX, SMALL_TOOL } from './upstream.js';

/** The built command line, as users run it (dist/bench/… → dist/src/bin.js). */
const BIN = fileURLToPath(new URL('../src/bin.js', import.meta.url));

/** Replicas behind one Service share the public origin, so one token (aud) works on each. */
export const PUBLIC_URL = 'http://localhost:8443';
/** The audience of every benchmark token; each issuer accepts it on every route (issuers[].audiences). */
export const RESOURCE = `${PUBLIC_URL}/mcp`;

/**
 * The policy of the measured routes. Every call needs todo:read; small_call carries a rate limit
 * so each measured call also pays the limiter (1,000,000 per minute never refuses at any rate
 * this benchmark reaches, yet keeps a real 60 µs GCRA interval); `admin_*` is denied, so
 * tools/list answers are really filtered (20 of 200 tools removed).
 */
const FILTERING_POLICY = `scopes: [todo:read]
tools:
  ${SMALL_TOOL}:
    scopes: [todo:read]
    rateLimit: { requests: 1000000, per: 1m }
  "${HIDDEN_TOOL_PREFIX}*": deny
  "*": [todo:read]
`;

/** The same without the deny: a catch-all shows every tool, so the gateway filters no list. */
const SHOWS_EVERY_TOOL_POLICY = `scopes: [todo:read]
tools:
  ${SMALL_TOOL}:
    scopes: [todo:read]
    rateLimit: { requests: 1000000, per: 1m }
  "*": [todo:read]
`;

export type PolicyName = 'filtering' | 'shows-every-tool';
const POLICIES: Record<PolicyName, string> = { filtering: FILTERING_POLICY, 'shows-every-tool': SHOWS_EVERY_TOOL_POLICY };

export type StoreSpec = { readonly type: 'memory' } | { readonly type: 'redis'; readonly url: string; readonly keyPrefix: string };

/** How the gateway checks tokens: JWTs against the issuer's keys, or opaque tokens by introspection. */
export type IssuerSpec =
  | { readonly kind: 'jwt'; readonly issuer: string }
  | { readonly kind: 'introspection'; readonly issuer: string; readonly clientId: string; readonly clientSecret: string };

export interface GatewayRoute {
  /** The public path, e.g. /mcp. */
  readonly path: string;
  /** The upstream path it forwards to. */
  readonly upstreamPath: string;
  readonly policy: PolicyName;
  /** The route's upstreamAuth, as a YAML flow mapping (its files are in the config's directory). */
  readonly upstreamAuth?: string;
}

export interface GatewaySpec {
  readonly name: string;
  readonly issuer: IssuerSpec;
  readonly upstreamOrigin: string;
  readonly routes: readonly GatewayRoute[];
  readonly store: StoreSpec;
  /** sessions.maxPerPrincipal: the idle-streams measurement opens one session per stream, all as one user. */
  readonly maxSessionsPerPrincipal?: number;
  /** Extra node flags (--cpu-prof, --trace-gc-nvp). */
  readonly nodeFlags?: readonly string[];
  /** Another build's dist/src/bin.js, to compare two builds under the same load; default: this build's. */
  readonly bin?: string;
  /** Files the routes' upstreamAuth names (secrets), written beside the config. */
  readonly files?: Readonly<Record<string, string>>;
  /**
   * log.level; default: none set, so the gateway's own default (info: an access and an audit
   * line per request, what users run). warn: nothing logged on the hot path (row c-quiet).
   */
  readonly logLevel?: 'warn';
  /** A command the gateway runs under (valgrind: bench/instructions.ts). */
  readonly wrapper?: readonly string[];
  /** How long it may take to answer /readyz (default 15 s; far longer under valgrind). */
  readonly readyTimeoutMs?: number;
}

export interface RunningGateway {
  readonly child: Child;
  /** http://127.0.0.1:PORT (no path). */
  readonly origin: string;
  /** Milliseconds from spawning the process to the first 200 from /readyz. */
  readonly startupMs: number;
}

/** Writes the config (and the policies) into `dir`, starts the gateway, waits for /readyz. */
export async function startGatewayProcess(dir: string, spec: GatewaySpec): Promise<RunningGateway> {
  // Its stdout goes to a log reader that passes on warnings only, so the port is chosen here
  // rather than read back from its output.
  const port = await freePort();
  for (const [name, text] of Object.entries(POLICIES)) await writeFile(join(dir, `${name}.yaml`), text);
  for (const [name, text] of Object.entries(spec.files ?? {})) await writeFile(join(dir, name), text);
  const configFile = join(dir, `${spec.name}.yaml`);
  await writeFile(configFile, gatewayConfig(port, spec));
  const started = performance.now();
  const child = spawnNodeLoggingToReader(spec.name, spec.bin ?? BIN, ['--config', configFile], spec.nodeFlags ?? [], spec.wrapper);
  await waitUntilReady(child, `http://127.0.0.1:${port}/readyz`, spec.readyTimeoutMs);
  return { child, origin: `http://127.0.0.1:${port}`, startupMs: performance.now() - started };
}

function gatewayConfig(port: number, spec: GatewaySpec): string {
  const store =
    spec.store.type === 'memory'
      ? '{ type: memory }'
      : `{ type: redis, url: ${JSON.stringify(spec.store.url)}, keyPrefix: ${JSON.stringify(spec.store.keyPrefix)} }`;
  const issuer = spec.issuer;
  const introspection =
    issuer.kind === 'introspection'
      ? // A day-long cache: a run never re-introspects its token (row (d) measures the cached path).
        `, introspection: { clientId: ${JSON.stringify(issuer.clientId)}, clientSecret: ${JSON.stringify(issuer.clientSecret)}, cacheTtl: 24h }`
      : '';
  return [
    `listen: { host: 127.0.0.1, port: ${port} }`,
    `publicUrl: ${PUBLIC_URL}`,
    `store: ${store}`,
    `sessions: { maxPerPrincipal: ${spec.maxSessionsPerPrincipal ?? 64} }`,
    // The idle-streams measurement holds up to ~10,000 client connections.
    'limits: { maxConnections: 20000 }',
    // A stop (and with --cpu-prof, the profile written at exit) must not wait 20 s.
    'shutdown: { gracePeriod: 1s }',
    // No log.level: the default (info) logs every request, as users run it; row c-quiet: warn.
    ...(spec.logLevel ? [`log: { level: ${spec.logLevel} }`] : []),
    'issuers:',
    `  - { issuer: ${JSON.stringify(issuer.issuer)}, audiences: [${JSON.stringify(RESOURCE)}]${introspection} }`,
    'routes:',
    ...spec.routes.map(
      (route, i) =>
        `  - { name: r${i}, path: ${route.path}, upstream: ${JSON.stringify(spec.upstreamOrigin + route.upstreamPath)}, policy: ${route.policy}.yaml${route.upstreamAuth ? `, upstreamAuth: ${route.upstreamAuth}` : ''} }`,
    ),
    '',
  ].join('\n');
}

/** Polls /readyz until 200 (issuer keys fetched, the store answering), every 10 ms so startup time is measured finely. */
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
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await child.stop();
  throw new Error(`${child.name} did not become ready (${last}):\n${child.output.join('\n')}`);
}

/** A port free right now (the OS picks it); the gateway binds it moments later. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
