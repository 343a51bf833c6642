/**
 * One real IdP and one real SDK upstream, shared by several in-process gateways that differ
 * only in their listener settings (limits, timeouts, TLS, trusted proxies): each gateway gets
 * its own directory, config and log, and tokens minted for its own resource URL.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { parseConfig } from '../../src/config/load.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { IDP_SCOPES, TODO_POLICY } from './stack.js';
import { captureLogs } from './log-capture.js';

export interface Backends {
  readonly idp: DevIdp;
  readonly upstream: SampleUpstream;
  close(): Promise<void>;
}

/** The IdP and a JSON-mode upstream serving MCP at `upstreamPath` (default /mcp). */
export async function startBackends(options: { upstreamPath?: string } = {}): Promise<Backends> {
  const idp = await startDevIdp({ scopes: IDP_SCOPES });
  const upstream = await startSampleUpstream({ responseMode: 'json', ...(options.upstreamPath ? { path: options.upstreamPath } : {}) });
  return {
    idp,
    upstream,
    async close() {
      await upstream.close();
      await idp.close();
    },
  };
}

export interface TestGateway {
  readonly gateway: Gateway;
  /** e.g. http://127.0.0.1:PORT (https:// with tls). */
  readonly url: string;
  readonly port: number;
  /** gateway url + /mcp: the route's resource URL. */
  readonly mcpUrl: string;
  /** The directory holding its config, policy and any other files. */
  readonly dir: string;
  /** Every log entry it wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  /** A fresh access token for this gateway's route. */
  token(scope?: string): Promise<string>;
  /** Reloads it (as a file change or SIGHUP would) from the same config with `head` instead. */
  reload(head: string): Promise<void>;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  /** Top-level YAML placed before `issuers:` (limits, timeouts, tls, trustedProxies…). */
  readonly head?: string;
  /** The route's upstream (default: the shared sample upstream). */
  readonly upstreamUrl?: string;
  /** Extra keys of the one issuer, as YAML lines indented for the issuer mapping (4 spaces). */
  readonly issuerExtra?: string;
  /** Files to write next to the config before loading it (name → content). */
  readonly files?: Readonly<Record<string, string>>;
  /** Runs in the gateway's directory before the config is loaded (e.g. to make TLS files). */
  readonly prepare?: (dir: string) => Promise<void>;
}

export async function startTestGateway(backends: Backends, options: TestGatewayOptions = {}): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gw-hard-'));
  try {
    await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
    for (const [name, content] of Object.entries(options.files ?? {})) await writeFile(join(dir, name), content);
    await options.prepare?.(dir);
    const load = (head: string | undefined) =>
      parseConfig(
        join(dir, 'gateway.yaml'),
        [
          'listen: { host: 127.0.0.1, port: 0 }',
          'store: { type: memory }',
          head ?? '',
          'issuers:',
          `  - issuer: ${backends.idp.issuer}`,
          options.issuerExtra ?? '',
          'routes:',
          `  - { name: todo, path: /mcp, upstream: "${options.upstreamUrl ?? backends.upstream.url}", policy: todo.yaml }`,
        ].join('\n'),
      );
    const config = await load(options.head);
    const { logger, logs } = captureLogs();
    const gateway = await startGateway(config, { logger });
    const mcpUrl = `${gateway.url}/mcp`;
    return {
      gateway,
      url: gateway.url,
      port: Number(new URL(gateway.url).port),
      mcpUrl,
      dir,
      logs,
      token: async (scope = 'todo:read') => (await obtainAccessToken(backends.idp, { resource: mcpUrl, scope })).accessToken,
      async reload(head) {
        gateway.reload(await load(head));
      },
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

const execFileAsync = promisify(execFile);

/** Writes a self-signed P-256 certificate for 127.0.0.1 (`cert.pem`) and its key (`key.pem`) into `dir`, with openssl. */
export async function makeSelfSignedCert(dir: string, names = { cert: 'cert.pem', key: 'key.pem' }): Promise<void> {
  await execFileAsync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', join(dir, names.key), '-out', join(dir, names.cert),
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ]);
}

/**
 * A TCP address that never completes a handshake: a listener (in a child process whose event
 * loop is blocked, so it never accepts) whose accept queue is full. Linux then drops every
 * further SYN, so a connect() there stays pending until the client gives up, as with a
 * firewalled or vanished host. (A non-routable address such as 10.255.255.1 is no substitute:
 * sandboxes and CI runners may answer it.)
 */
export interface BlackHole {
  readonly port: number;
  close(): void;
}

export async function startBlackHole(): Promise<BlackHole> {
  const script = `
    const server = require('node:net').createServer(() => {});
    server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(server.address().port + '\\n');
      // Block the event loop without spinning: the kernel keeps the queue, nobody accepts.
      // (For a minute at most, should the test runner die without killing it.)
      setTimeout(() => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000); process.exit(0); }, 20);
    });`;
  const child: ChildProcess = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (data: Buffer) => resolve(Number(data.toString().trim())));
    child.once('exit', (code) => reject(new Error(`black-hole listener exited with ${code}`)));
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Fill the accept queue (backlog + 1 on Linux); further connects hang in SYN_SENT.
  const fillers: Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    fillers.push(socket);
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  const close = () => {
    for (const socket of fillers) socket.destroy();
    child.kill('SIGKILL');
    process.off('exit', killOnExit);
  };
  // Prove it: one more connect must still be pending a moment later.
  const probe = createConnection({ host: '127.0.0.1', port });
  probe.on('error', () => undefined);
  fillers.push(probe);
  const connected = await new Promise<boolean>((resolve) => {
    probe.once('connect', () => resolve(true));
    setTimeout(() => resolve(false), 100);
  });
  if (connected) {
    close();
    throw new Error('the black-hole listener completed a handshake: its accept queue is not full on this system');
  }
  return { port, close };
}
