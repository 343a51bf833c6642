/**
 * Real redis-server processes for tests: standalone (optionally TLS and/or ACL-protected) and
 * small clusters, each on ephemeral loopback ports with its own temp dir. Nothing is persisted.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 5_000;
const CLUSTER_TIMEOUT_MS = 15_000;
const KILL_AFTER_MS = 3_000;
const OUTPUT_LINES = 50;
const PORT_ATTEMPTS = 5;

export interface RedisServerOptions {
  /** Serve TLS only (plain port disabled), with a throwaway CA, server and client certificate. */
  readonly tls?: boolean;
  /** Create this ACL user with full permissions and disable the passwordless `default` user. */
  readonly user?: { readonly name: string; readonly password: string };
  /** Appended last, so they override the defaults (e.g. `['--tls-auth-clients', 'yes']`). */
  readonly extraArgs?: readonly string[];
}

export interface RedisTlsFiles {
  readonly caFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

export interface RedisServerHandle {
  readonly host: typeof HOST;
  readonly port: number;
  /** `redis://` or `rediss://`, with `user:password@` when a user was configured. */
  readonly url: string;
  readonly tls?: RedisTlsFiles;
  /** The server's last lines of log output, for assertion messages. */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited after 3 s. Data is lost (no persistence). */
  stop(): Promise<void>;
  /** Restart a stopped server on the same port with the same options. */
  start(): Promise<void>;
  /** SIGSTOP: the server keeps its sockets but answers nothing until thaw(). */
  freeze(): void;
  thaw(): void;
  /** stop() and remove the temp dir. */
  close(): Promise<void>;
}

export interface RedisClusterHandle {
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /** Each node's own server, in the order of `nodes` (e.g. to freeze() one master). */
  readonly servers: readonly RedisServerHandle[];
  close(): Promise<void>;
}

// One registry per process even if vitest re-imports this module, so that a single set of hooks
// kills whatever a failed or forgetful test left behind (SIGKILL works on frozen servers too).
interface Registry {
  readonly children: Set<ChildProcess>;
  readonly dirs: Set<string>;
}
const REGISTRY_KEY = Symbol.for('mcp-auth-gateway.test.redis-servers');
const globalSlot = globalThis as { [REGISTRY_KEY]?: Registry };
const registry: Registry = (globalSlot[REGISTRY_KEY] ??= createRegistry());

function createRegistry(): Registry {
  const created: Registry = { children: new Set(), dirs: new Set() };
  const cleanUp = (): void => {
    for (const child of created.children) child.kill('SIGKILL');
    for (const dir of created.dirs) rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanUp);
  // Vitest ends its fork workers with SIGTERM, which skips 'exit' handlers. Clean up, then let the
  // signal do what it would have done without us: re-raise it unless someone else handles it.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, function onSignal() {
      cleanUp();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
  return created;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  return startNode(options, false);
}

export async function startRedisCluster(size = 3): Promise<RedisClusterHandle> {
  // redis-cli --cluster create refuses fewer than 3 masters.
  if (size < 3) throw new Error(`startRedisCluster: size must be at least 3, got ${size}`);
  const started = await Promise.allSettled(Array.from({ length: size }, () => startNode({}, true)));
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const close = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.close()));
  };
  try {
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const addresses = servers.map((s) => `${HOST}:${s.port}`);
    await execFileAsync(
      'redis-cli',
      ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: CLUSTER_TIMEOUT_MS },
    );
    await waitForClusterOk(servers, CLUSTER_TIMEOUT_MS);
  } catch (err) {
    const logs = servers.map((s) => `--- ${HOST}:${s.port} ---\n${s.output()}`).join('\n');
    await close();
    throw new Error(`startRedisCluster failed: ${errorText(err)}\n${logs}`, { cause: err });
  }
  return { nodes: servers.map((s) => ({ host: HOST, port: s.port })), servers, close };
}

async function startNode(options: RedisServerOptions, clusterNode: boolean): Promise<RedisServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'redis-test-'));
  registry.dirs.add(dir);
  const removeDir = async (): Promise<void> => {
    await rm(dir, { recursive: true, force: true });
    registry.dirs.delete(dir);
  };
  try {
    const tlsFiles = options.tls ? await generateTlsFiles(dir) : undefined;
    const configArgs = [
      ...(options.user ? await writeAclFile(dir, options.user) : []),
      ...(tlsFiles ? tlsArgs(dir) : []),
    ];
    const probeArgs = [
      // The client certificate lets the probe through when extraArgs demand mutual TLS.
      ...(tlsFiles ? ['--tls', '--cacert', tlsFiles.caFile, '--cert', tlsFiles.clientCertFile, '--key', tlsFiles.clientKeyFile] : []),
      ...(options.user ? ['--user', options.user.name, '--pass', options.user.password, '--no-auth-warning'] : []),
    ];

    // Ephemeral ports are only reserved until we release them, so another process can win the
    // race before redis binds: retry with fresh ports when that happens.
    let node: RunningNode | undefined;
    for (let attempt = 1; !node; attempt++) {
      const port = await freePort();
      const clusterArgs = clusterNode ? await clusterNodeArgs(port) : [];
      const args = [...baseArgs(dir, port, tlsFiles !== undefined), ...configArgs, ...clusterArgs, ...(options.extraArgs ?? [])];
      try {
        node = await runNode(args, port, probeArgs);
      } catch (err) {
        if (!(err instanceof RedisStartError && err.addressInUse) || attempt >= PORT_ATTEMPTS) throw err;
      }
    }
    return makeHandle(node, options, tlsFiles, probeArgs, removeDir);
  } catch (err) {
    await removeDir();
    throw err;
  }
}

function makeHandle(
  first: RunningNode,
  options: RedisServerOptions,
  tlsFiles: RedisTlsFiles | undefined,
  probeArgs: readonly string[],
  removeDir: () => Promise<void>,
): RedisServerHandle {
  const { port, args } = first;
  let latest = first;
  let running = true;
  let closed = false;
  const auth = options.user
    ? `${encodeURIComponent(options.user.name)}:${encodeURIComponent(options.user.password)}@`
    : '';
  const signal = (action: string, sig: NodeJS.Signals): void => {
    if (!running) throw new Error(`redis ${HOST}:${port}: cannot ${action}, the server is stopped`);
    latest.child.kill(sig);
  };
  const stop = async (): Promise<void> => {
    running = false;
    await terminate(latest.child);
  };
  return {
    host: HOST,
    port,
    url: `${tlsFiles ? 'rediss' : 'redis'}://${auth}${HOST}:${port}`,
    ...(tlsFiles ? { tls: tlsFiles } : {}),
    output: () => latest.output.text(),
    stop,
    async start() {
      if (closed) throw new Error(`redis ${HOST}:${port}: cannot start, the server is closed`);
      // Also restarts a server that died on its own.
      if (running && !hasExited(latest.child)) return;
      latest = await runNode(args, port, probeArgs);
      running = true;
    },
    freeze: () => signal('freeze', 'SIGSTOP'),
    thaw: () => signal('thaw', 'SIGCONT'),
    async close() {
      closed = true;
      await stop();
      await removeDir();
    },
  };
}

function baseArgs(dir: string, port: number, tls: boolean): string[] {
  const listen = tls ? ['--port', '0', '--tls-port', String(port)] : ['--port', String(port)];
  return [...listen, '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', ''];
}

function tlsArgs(dir: string): string[] {
  return [
    '--tls-cert-file', join(dir, 'server.crt'),
    '--tls-key-file', join(dir, 'server.key'),
    '--tls-ca-cert-file', join(dir, 'ca.crt'),
    '--tls-auth-clients', 'no',
  ];
}

async function clusterNodeArgs(port: number): Promise<string[]> {
  // The bus port defaults to port + 10000, which may be taken or exceed 65535 for ephemeral ports.
  const busPort = await freePort();
  return [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', `nodes-${port}.conf`,
    '--cluster-node-timeout', '2000',
    '--cluster-port', String(busPort),
  ];
}

/** Returns the redis-server arguments that load it. */
async function writeAclFile(dir: string, user: { name: string; password: string }): Promise<string[]> {
  if (!/^[^\s]+$/.test(user.name)) throw new Error(`redis user name must be non-empty without whitespace: "${user.name}"`);
  // The hashed form (#sha256) lets any password through the space-separated ACL file syntax.
  const hash = createHash('sha256').update(user.password).digest('hex');
  const file = join(dir, 'users.acl');
  await writeFile(file, `user default off\nuser ${user.name} on #${hash} ~* &* +@all\n`);
  return ['--aclfile', file];
}

const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = redis-test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
`;

/** A one-day CA plus server and client certificates signed by it, all EC P-256 (fast to generate). */
async function generateTlsFiles(dir: string): Promise<RedisTlsFiles> {
  // Our own config keeps the output independent of the system openssl.cnf defaults.
  const config = join(dir, 'openssl.cnf');
  await writeFile(config, OPENSSL_CONFIG);
  const file = (name: string): string => join(dir, name);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-config', config];
  await openssl('req', '-x509', ...newKey, '-extensions', 'ca', '-days', '1', '-sha256',
    '-subj', '/CN=redis-test-ca', '-keyout', file('ca.key'), '-out', file('ca.crt'));
  const issue = async (name: 'server' | 'client', subject: string): Promise<void> => {
    await openssl('req', '-new', ...newKey, '-subj', subject, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`));
    // An explicit random serial avoids two parallel signings racing on a shared ca.srl file.
    await openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '1', '-sha256',
      '-extfile', config, '-extensions', name, '-out', file(`${name}.crt`));
  };
  await Promise.all([issue('server', '/CN=localhost'), issue('client', '/CN=redis-test-client')]);
  return { caFile: file('ca.crt'), clientCertFile: file('client.crt'), clientKeyFile: file('client.key') };
}

async function openssl(...args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { timeout: 10_000 });
  } catch (err) {
    throw new Error(`openssl ${args[0]} failed: ${errorText(err)}`, { cause: err });
  }
}

interface RunningNode {
  readonly child: ChildProcess;
  readonly port: number;
  readonly args: readonly string[];
  readonly output: OutputTail;
}

class RedisStartError extends Error {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
  }
}

/** Spawns redis-server and resolves once it answers PING (authenticated, over TLS if configured). */
async function runNode(args: readonly string[], port: number, probeArgs: readonly string[]): Promise<RunningNode> {
  const output = new OutputTail(OUTPUT_LINES);
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  registry.children.add(child);
  // 'close' also fires when the spawn itself failed, unlike 'exit'.
  child.on('close', () => registry.children.delete(child));
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));
  let spawnError: Error | undefined;
  child.on('error', (err) => (spawnError = err));

  const fail = async (reason: string): Promise<never> => {
    await terminate(child);
    const text = output.text();
    throw new RedisStartError(
      `redis-server on ${HOST}:${port} ${reason}\nargs: ${args.map((a) => (a === '' ? '""' : a)).join(' ')}\n--- output ---\n${text}`,
      text.includes('Address already in use'),
    );
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastProbe = '';
  for (;;) {
    if (spawnError) return fail(`could not be spawned: ${spawnError.message}`);
    if (hasExited(child)) return fail(`exited early (code ${child.exitCode}, signal ${child.signalCode})`);
    lastProbe = await cli(port, [...probeArgs, 'PING']).catch((err: unknown) => errorText(err));
    if (lastProbe === 'PONG') return { child, port, args, output };
    if (Date.now() > deadline) return fail(`did not answer PING within ${START_TIMEOUT_MS} ms (last probe: ${lastProbe})`);
    await sleep(50);
  }
}

async function terminate(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return;
  const exited = once(child, 'exit');
  // A frozen (SIGSTOPped) server only acts on SIGTERM once it runs again.
  child.kill('SIGCONT');
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
  try {
    await exited;
  } finally {
    clearTimeout(killer);
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function cli(port: number, args: readonly string[]): Promise<string> {
  // The timeout keeps a probe from hanging on a server that accepted but is not answering.
  const { stdout } = await execFileAsync('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeout: 2_000 });
  return stdout.trim();
}

async function waitForClusterOk(servers: readonly RedisServerHandle[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let problem = '';
  for (;;) {
    problem = await clusterProblem(servers).catch((err: unknown) => errorText(err));
    if (!problem) return;
    if (Date.now() > deadline) throw new Error(`cluster not ready after ${timeoutMs} ms: ${problem}`);
    await sleep(100);
  }
}

/** Why the cluster is not usable yet, or '' when every node is ok and all agree on the slot map. */
async function clusterProblem(servers: readonly RedisServerHandle[]): Promise<string> {
  const views: string[] = [];
  for (const server of servers) {
    const info = await cli(server.port, ['CLUSTER', 'INFO']);
    if (!/^cluster_state:ok\s*$/m.test(info)) return `${server.port}: cluster_state is not ok`;
    views.push(slotMap(await cli(server.port, ['CLUSTER', 'NODES'])));
  }
  const [first] = views;
  if (views.some((v) => v !== first)) return `nodes disagree on slots:\n${views.join('\n')}`;
  const masters = first ? first.split(' ').length : 0;
  if (masters !== servers.length) return `expected ${servers.length} masters with slots, saw: ${first}`;
  return '';
}

/** One node's view of which master serves which slots, canonicalised for comparison. */
function slotMap(clusterNodes: string): string {
  return clusterNodes
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[2]?.split(',').includes('master') && fields.length > 8)
    .map((fields) => `${fields[1]?.split('@')[0]}=${fields.slice(8).join(',')}`)
    .sort()
    .join(' ');
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Keeps the last lines a process wrote, for error messages. */
class OutputTail {
  private readonly lines: string[] = [];
  private partial = '';

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    const parts = (this.partial + chunk.toString()).split('\n');
    this.partial = parts.pop() ?? '';
    this.lines.push(...parts);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }

  text(): string {
    return [...this.lines, this.partial].join('\n').trim();
  }
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // execFile's message already includes stderr, but redis-cli reports some failures on stdout.
  const { stdout } = err as { stdout?: unknown };
  return [err.message, typeof stdout === 'string' ? stdout : ''].join('\n').trim();
}
