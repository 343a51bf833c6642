import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../dev/idp.js';
import type { Child } from './children.js';
import { firstJsonLine, spawnNode } from './children.js';
import type { Cleanup } from './cleanup.js';
import { ownCpu, processCpu, type CpuSource } from './cpu.js';
import { freePort, RESOURCE, startGatewayProcess, type GatewayRoute, type GatewaySpec, type RunningGateway, type StoreSpec } from './gateway-process.js';
import { assertWorkloadWorks, mcpHeaders, openSession, type Endpoint, type Workload, type WorkloadId } from './mcp.js';
import { findNginx, startNginx } from './nginx.js';
import { BenchRedis } from './redis.js';
import type { BenchSettings, RowId } from './settings.js';
import { HIDDEN_TOOL_COUNT, TOOL_COUNT } from './upstream.js';

/** One row of the report: where the load goes, and which processes' CPU it spends. */
export interface Row {
  readonly id: RowId;
  readonly label: string;
  /** Two for row f: the load is split evenly between the replicas. */
  readonly origins: readonly string[];
  readonly token: string | undefined;
  /** The path each workload uses on this row; a workload without one does not run on it. */
  readonly paths: Partial<Record<WorkloadId, string>>;
  /** How many tools a tools/list answer through this row holds. */
  readonly listedTools: number;
  readonly cpu: readonly CpuSource[];
  /** Gateway processes, to report warnings they logged. */
  readonly gateways: readonly Child[];
}

/** A row left out, and why (nginx not installed). */
export interface SkippedRow {
  readonly id: RowId;
  readonly label: string;
  readonly reason: string;
}

/** One row under one workload. */
export interface Cell {
  readonly workload: Workload;
  readonly row: Row;
  readonly path: string;
}

/** An MCP session open through a cell's row: where its load goes, and how to end it. */
export interface CellSession {
  readonly endpoints: readonly Endpoint[];
  close(): Promise<void>;
}

export interface Stack {
  readonly rows: readonly Row[];
  readonly skipped: readonly SkippedRow[];
  readonly upstreamOrigin: string;
  readonly upstreamPid: number;
  /**
   * A full GC in the upstream, now. The SDK upstream keeps every request of a session until it
   * ends and makes hundreds of MB of garbage a minute: its mark-compact pauses (10–55 ms) were
   * what a short fixed-rate run's p99 measured, for every row alike, depending on whether one
   * fell into the run. Collected before each fixed-rate run, they fall between runs instead.
   */
  readonly collectUpstreamGarbage: () => Promise<void>;
  /** Token and issuer of the JWT IdP (row c), for gateways other phases start. */
  readonly jwt: { readonly issuer: string; readonly token: string };
  /** Temp dir for configs. */
  readonly dir: string;
  /** Startup-to-ready of each main gateway (ms), by process name. */
  readonly startupMs: Readonly<Record<string, number>>;
}

export const LABELS: Record<RowId, string> = {
  a: 'direct to upstream',
  b: 'bare http-proxy-3 hop',
  'b-node': 'bare node:http hop',
  'b-undici': 'bare undici hop',
  c: 'gateway, JWT + policy',
  'c-quiet': 'gateway, JWT + policy, log level warn',
  'c-base': 'gateway, JWT + policy (baseline build)',
  'c-all': 'gateway, JWT, nothing to filter',
  d: 'gateway, opaque token (introspection cached)',
  e: 'nginx reverse proxy',
  f: '2 gateways, JWT, shared Redis',
  g: 'gateway, JWT + token exchange (cached)',
};

const ALL_PATHS = { call: '/mcp', 'call-lean': '/mcp-lean', list: '/mcp', sse: '/mcp-sse' } as const;
/** The measured gateway routes: lists filtered on /mcp, /mcp-lean and /mcp-sse, not on /mcp-all. */
export const GATEWAY_ROUTES: readonly GatewayRoute[] = [
  { path: '/mcp', upstreamPath: '/mcp', policy: 'filtering' },
  { path: '/mcp-lean', upstreamPath: '/mcp-lean', policy: 'filtering' },
  { path: '/mcp-all', upstreamPath: '/mcp', policy: 'shows-every-tool' },
  { path: '/mcp-sse', upstreamPath: '/mcp-sse', policy: 'filtering' },
];
const INTROSPECTION_CLIENT = { clientId: 'bench-gateway', clientSecret: 'bench-secret', authMethod: 'client_secret_basic' as const };
/** Row g's client at the JWT IdP: it exchanges the benchmark token for the upstream's (RFC 8693). */
const EXCHANGE_CLIENT = { clientId: 'bench-gateway-exchange', clientSecret: 'bench-exchange-secret' };
/**
 * Row g: the small calls of row c, on routes whose upstream credential is the token exchanged at
 * the IdP. One principal, exchanged once (when the session opens) for a day-long token: every
 * measured request takes it from the cache, so row g minus row c is what a cached exchange costs.
 */
const EXCHANGE_AUTH = `{ tokenExchange: { clientId: ${EXCHANGE_CLIENT.clientId}, clientSecretFile: exchange-secret, audience: bench-upstream } }`;
const EXCHANGE_ROUTES: readonly GatewayRoute[] = [
  { path: '/mcp', upstreamPath: '/mcp', policy: 'filtering', upstreamAuth: EXCHANGE_AUTH },
  { path: '/mcp-lean', upstreamPath: '/mcp-lean', policy: 'filtering', upstreamAuth: EXCHANGE_AUTH },
];

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
/** A day-long token: long runs must not cross its expiry (401s would look like a slow gateway). */
const TOKEN_TTL_SECONDS = 24 * 60 * 60;

async function idpWithToken(cleanup: Cleanup, format: 'jwt' | 'opaque'): Promise<{ idp: DevIdp; token: string }> {
  const idp = await startDevIdp({
    scopes: ['todo:read'],
    accessTokenTtlSeconds: TOKEN_TTL_SECONDS,
    accessTokenFormat: format,
    ...(format === 'opaque' ? { introspectionClients: [INTROSPECTION_CLIENT] } : {}),
    // Harmless to the other rows: only row g's gateway asks for an exchange.
    ...(format === 'jwt' ? { tokenExchange: { clients: [EXCHANGE_CLIENT], tokenTtlSeconds: TOKEN_TTL_SECONDS } } : {}),
  });
  cleanup.defer(`development IdP (${format})`, () => idp.close());
  const { accessToken } = await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', subject: 'bench' });
  return { idp, token: accessToken };
}

/**
 * Starts the IdPs (here: they are idle while load runs; the opaque token is introspected once,
 * then cached), the upstream, the bare proxy, nginx if installed, and the gateways of the
 * selected rows. Everything started is registered with `cleanup` as soon as it exists.
 */
export async function startStack(cleanup: Cleanup, settings: BenchSettings): Promise<Stack> {
  const wants = (id: RowId) => settings.rows.includes(id);
  const jwt = await idpWithToken(cleanup, 'jwt');
  const opaque = wants('d') ? await idpWithToken(cleanup, 'opaque') : undefined;

  const upstream = spawnNode('upstream', here('./upstream-process.js'), [], ['--expose-gc']);
  cleanup.defer('upstream process', () => upstream.stop());
  const upstreamOrigin = String((await firstJsonLine(upstream)).origin);

  const dir = await mkdtemp(join(tmpdir(), 'mcp-auth-gateway-bench-'));
  cleanup.defer('temp dir', () => rm(dir, { recursive: true, force: true }));

  const pid = (child: Child) => child.process.pid!;
  const upstreamCpu = processCpu('upstream', pid(upstream));
  const loadCpu = ownCpu();
  const rows: Row[] = [];
  const skipped: SkippedRow[] = [];
  const startupMs: Record<string, number> = {};
  const row = (id: RowId, rest: Omit<Row, 'id' | 'label'>) => rows.push({ id, label: LABELS[id], ...rest });

  if (wants('a')) row('a', { origins: [upstreamOrigin], token: undefined, paths: ALL_PATHS, listedTools: TOOL_COUNT, cpu: [upstreamCpu, loadCpu], gateways: [] });
  const profile = settings.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${settings.cpuProfDir}`] : [];
  // The bare hops are profiled too, under names of their own: a gateway's profile reads best against theirs.
  const profileNamed = (name: string) => (profile.length > 0 ? [...profile, `--cpu-prof-name=${name}.cpuprofile`] : []);
  if (wants('b')) {
    const proxy = spawnNode('bare proxy', here('./proxy-process.js'), [upstreamOrigin], profileNamed('hop-http-proxy-3'));
    cleanup.defer('bare proxy process', () => proxy.stop());
    const origin = String((await firstJsonLine(proxy)).origin);
    row('b', { origins: [origin], token: undefined, paths: ALL_PATHS, listedTools: TOOL_COUNT, cpu: [processCpu('proxy', pid(proxy)), upstreamCpu, loadCpu], gateways: [] });
  }
  for (const [id, kind] of [['b-node', 'node-http'], ['b-undici', 'undici']] as const) {
    if (!wants(id)) continue;
    const proxy = spawnNode(`bare ${kind} proxy`, here('./proxy-process.js'), [upstreamOrigin, kind], profileNamed(`hop-${kind}`));
    cleanup.defer(`bare ${kind} proxy process`, () => proxy.stop());
    const origin = String((await firstJsonLine(proxy)).origin);
    row(id, { origins: [origin], token: undefined, paths: ALL_PATHS, listedTools: TOOL_COUNT, cpu: [processCpu('proxy', pid(proxy)), upstreamCpu, loadCpu], gateways: [] });
  }

  const startGateway = async (spec: GatewaySpec): Promise<RunningGateway> => {
    const gateway = await startGatewayProcess(dir, spec);
    cleanup.defer(spec.name, () => gateway.child.stop());
    startupMs[spec.name] = gateway.startupMs;
    return gateway;
  };
  const memory: StoreSpec = { type: 'memory' };
  const jwtIssuer = { kind: 'jwt', issuer: jwt.idp.issuer } as const;
  if (wants('c') || wants('c-all')) {
    const gateway = await startGateway({ name: 'gateway-jwt', issuer: jwtIssuer, upstreamOrigin, routes: GATEWAY_ROUTES, store: memory, nodeFlags: profile });
    const common = { origins: [gateway.origin], token: jwt.token, cpu: [processCpu('gateway', pid(gateway.child)), upstreamCpu, loadCpu], gateways: [gateway.child] };
    if (wants('c')) row('c', { ...common, paths: ALL_PATHS, listedTools: TOOL_COUNT - HIDDEN_TOOL_COUNT });
    if (wants('c-all')) row('c-all', { ...common, paths: { list: '/mcp-all' }, listedTools: TOOL_COUNT });
  }
  if (wants('c-quiet')) {
    // Row c's gateway with nothing logged per request: what logging at info costs is c-quiet minus c.
    const gateway = await startGateway({ name: 'gateway-jwt-quiet', issuer: jwtIssuer, upstreamOrigin, routes: GATEWAY_ROUTES, store: memory, logLevel: 'warn' });
    row('c-quiet', { origins: [gateway.origin], token: jwt.token, paths: ALL_PATHS, listedTools: TOOL_COUNT - HIDDEN_TOOL_COUNT, cpu: [processCpu('gateway', pid(gateway.child)), upstreamCpu, loadCpu], gateways: [gateway.child] });
  }
  if (wants('c-base') && settings.baselineBin) {
    // The same config, load and upstream as row c, from another build: A/B within one run.
    const gateway = await startGateway({ name: 'gateway-jwt-baseline', issuer: jwtIssuer, upstreamOrigin, routes: GATEWAY_ROUTES, store: memory, bin: settings.baselineBin });
    row('c-base', { origins: [gateway.origin], token: jwt.token, paths: ALL_PATHS, listedTools: TOOL_COUNT - HIDDEN_TOOL_COUNT, cpu: [processCpu('gateway', pid(gateway.child)), upstreamCpu, loadCpu], gateways: [gateway.child] });
  }
  if (wants('g')) {
    const gateway = await startGateway({ name: 'gateway-exchange', issuer: jwtIssuer, upstreamOrigin, routes: EXCHANGE_ROUTES, store: memory, nodeFlags: profile, files: { 'exchange-secret': EXCHANGE_CLIENT.clientSecret } });
    row('g', {
      origins: [gateway.origin],
      token: jwt.token,
      paths: { call: '/mcp', 'call-lean': '/mcp-lean' },
      listedTools: TOOL_COUNT - HIDDEN_TOOL_COUNT,
      cpu: [processCpu('gateway', pid(gateway.child)), upstreamCpu, loadCpu],
      gateways: [gateway.child],
    });
  }
  if (opaque) {
    const issuer = { kind: 'introspection', issuer: opaque.idp.issuer, ...INTROSPECTION_CLIENT } as const;
    const gateway = await startGateway({ name: 'gateway-opaque', issuer, upstreamOrigin, routes: GATEWAY_ROUTES, store: memory, nodeFlags: profile });
    row('d', {
      origins: [gateway.origin],
      token: opaque.token,
      paths: ALL_PATHS,
      listedTools: TOOL_COUNT - HIDDEN_TOOL_COUNT,
      cpu: [processCpu('gateway', pid(gateway.child)), upstreamCpu, loadCpu],
      gateways: [gateway.child],
    });
  }
  if (wants('e')) {
    const nginx = await findNginx();
    if (!nginx.found) skipped.push({ id: 'e', label: LABELS.e, reason: nginx.reason });
    else {
      const port = await freePort();
      const child = await startNginx(nginx.path, dir, port, upstreamOrigin);
      cleanup.defer('nginx', () => child.stop());
      row('e', { origins: [`http://127.0.0.1:${port}`], token: undefined, paths: ALL_PATHS, listedTools: TOOL_COUNT, cpu: [processCpu('proxy', pid(child)), upstreamCpu, loadCpu], gateways: [] });
    }
  }
  if (wants('f')) {
    const redis = await BenchRedis.connect(settings.redisUrl);
    cleanup.defer('Redis connection', () => redis.close());
    // Registered before the replicas start, so keys they write are deleted even if startup fails.
    cleanup.defer('Redis keys', async () => void (await redis.deleteKeys()));
    const store = { type: 'redis', url: settings.redisUrl, keyPrefix: redis.keyPrefix } as const;
    const replicas = [await startGateway({ name: 'gateway-redis-1', issuer: jwtIssuer, upstreamOrigin, routes: GATEWAY_ROUTES, store }), await startGateway({ name: 'gateway-redis-2', issuer: jwtIssuer, upstreamOrigin, routes: GATEWAY_ROUTES, store })];
    row('f', {
      // Sessions are opened through replica 1 only: the binding lives in Redis, so replica 2
      // accepts it too, and every request on either replica pays the store lookup.
      origins: replicas.map((replica) => replica.origin),
      token: jwt.token,
      paths: ALL_PATHS,
      listedTools: TOOL_COUNT - HIDDEN_TOOL_COUNT,
      cpu: [...replicas.map((replica) => processCpu('gateway', pid(replica.child))), upstreamCpu, { role: 'redis', read: () => redis.cpuSeconds() }, loadCpu],
      gateways: replicas.map((replica) => replica.child),
    });
  }
  return { rows, skipped, upstreamOrigin, upstreamPid: pid(upstream), collectUpstreamGarbage: () => collectGarbage(upstream), jwt: { issuer: jwt.idp.issuer, token: jwt.token }, dir, startupMs };
}

/**
 * A fresh MCP session through the cell's row, shared by all its connections (row f: opened
 * through replica 1, used through both). Each measured run gets its own and ends it with DELETE:
 * the SDK upstream kept about 6 KB per JSON-answered request for as long as a session lived
 * (released by the upstream now: releaseAnsweredJsonStreams in upstream.ts), which over a whole
 * benchmark on one session grew to gigabytes; fresh sessions keep every run alike regardless.
 */
export async function openCellSession(cell: { readonly row: Pick<Row, 'origins' | 'token'>; readonly path: string }): Promise<CellSession> {
  const { row, path } = cell;
  const first = row.origins[0]! + path;
  const session = await openSession(first, row.token);
  const headers = mcpHeaders(row.token, session);
  return {
    endpoints: row.origins.map((origin) => ({ url: origin + path, headers })),
    async close() {
      const response = await fetch(first, { method: 'DELETE', headers });
      await response.text();
      if (response.status >= 300) throw new Error(`DELETE of a session via ${first} answered ${response.status}`);
    },
  };
}

/** Every row under every workload it serves, each checked once for a right answer through every endpoint. */
export async function checkedCells(rows: readonly Row[], workloads: readonly Workload[]): Promise<Cell[]> {
  const cells: Cell[] = [];
  for (const workload of workloads) {
    for (const row of rows) {
      const path = row.paths[workload.id];
      if (path === undefined) continue;
      const cell = { workload, row, path };
      const session = await openCellSession(cell);
      for (const endpoint of session.endpoints) await assertWorkloadWorks(endpoint, workload, row.listedTools);
      await session.close();
      cells.push(cell);
    }
  }
  return cells;
}

/** Asks an upstream process (bench/upstream-process.ts) to collect its garbage; resolves once it has. */
function collectGarbage(upstream: Child): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (stop(), reject(new Error('upstream did not answer gc within 10 s'))), 10_000);
    const stop = upstream.onLine((line) => {
      if (line !== '{"gc":true}') return;
      clearTimeout(timer);
      stop();
      resolve();
    });
    upstream.process.stdin!.write('gc\n');
  });
}
