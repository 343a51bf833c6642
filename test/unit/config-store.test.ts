import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigProblem } from '../../src/config/problems.js';
import type { StoreConfig } from '../../src/config/types.js';
import { configProblems, minimalConfig } from '../support/config-fixtures.js';

let dir: string;
const configFile = () => join(dir, 'gateway.yaml');

const PASSWORD = 's3cret pass';
const PEM = { ca: '-----BEGIN CERTIFICATE-----\nCA\n', cert: '-----BEGIN CERTIFICATE-----\nCLIENT\n', key: '-----BEGIN PRIVATE KEY-----\nKEY\n' };

function configWith(head = '', routeExtra = ''): string {
  return minimalConfig({ head, routeExtra });
}

async function storeOf(head: string): Promise<StoreConfig> {
  return (await parseConfig(configFile(), configWith(head))).store;
}

function problemsOf(text: string): Promise<readonly ConfigProblem[]> {
  return configProblems(configFile(), text);
}

/** The one problem `text` has, as `line:col message` in the config file. */
async function onlyProblem(text: string): Promise<string> {
  const problems = await problemsOf(text);
  expect(problems.map((p) => p.file)).toEqual([configFile()]);
  return `${problems[0]!.line}:${problems[0]!.col} ${problems[0]!.message}`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-gw-config-store-'));
  await mkdir(join(dir, 'policies'));
  await mkdir(join(dir, 'secrets'));
  await writeFile(join(dir, 'policies', 'todo.yaml'), 'scopes: [todo:read]\ntools:\n  list_todos: [todo:read]\n');
  await writeFile(join(dir, 'secrets', 'redis-password'), `${PASSWORD}\n`);
  await writeFile(join(dir, 'secrets', 'crlf-password'), `${PASSWORD}\r\n`);
  await writeFile(join(dir, 'secrets', 'two-newlines'), `${PASSWORD}\n\n`);
  await writeFile(join(dir, 'secrets', 'ca.pem'), PEM.ca);
  await writeFile(join(dir, 'secrets', 'client.pem'), PEM.cert);
  await writeFile(join(dir, 'secrets', 'client-key.pem'), PEM.key);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('store config: valid', () => {
  it('defaults to the memory store, and so does an explicit type: memory', async () => {
    expect(await storeOf('')).toEqual({ type: 'memory' });
    expect(await storeOf('store:\n  type: memory\n')).toEqual({ type: 'memory' });
  });

  it('fills in the Redis defaults for a url', async () => {
    expect(await storeOf('store:\n  type: redis\n  url: redis://redis:6379/0\n')).toEqual({
      type: 'redis',
      url: 'redis://redis:6379/0',
      keyPrefix: 'mcp-auth-gateway:',
      commandTimeoutMs: 500,
      connectTimeoutMs: 2_000,
    });
  });

  it('applies explicit prefix, user and timeouts', async () => {
    const store = await storeOf('store:\n  type: redis\n  url: redis://redis:6379\n  keyPrefix: "gw1:"\n  username: gateway\n  commandTimeout: 250ms\n  connectTimeout: 5s\n');
    expect(store).toMatchObject({ keyPrefix: 'gw1:', username: 'gateway', commandTimeoutMs: 250, connectTimeoutMs: 5_000 });
  });

  it('parses Cluster nodes as host and port, IPv6 without its brackets', async () => {
    const store = await storeOf("store:\n  type: redis\n  nodes: ['127.0.0.1:7000', '[::1]:7001', 'redis-0.redis:6379']\n");
    expect(store).toMatchObject({
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '::1', port: 7001 },
        { host: 'redis-0.redis', port: 6379 },
      ],
    });
    expect(store).not.toHaveProperty('url', expect.anything());
  });

  it('reads passwordFile relative to the config file, dropping one trailing newline', async () => {
    const password = async (file: string) => {
      const store = await storeOf(`store:\n  type: redis\n  url: redis://redis:6379\n  passwordFile: ${file}\n`);
      return store.type === 'redis' ? store.password : undefined;
    };
    expect(await password('secrets/redis-password')).toBe(PASSWORD);
    expect(await password('secrets/crlf-password')).toBe(PASSWORD);
    expect(await password('secrets/two-newlines')).toBe(`${PASSWORD}\n`);
  });

  it('takes a password given inline', async () => {
    expect(await storeOf('store:\n  type: redis\n  url: redis://redis:6379\n  password: inline-secret\n')).toMatchObject({ password: 'inline-secret' });
  });

  it('reads the TLS files into store.tls', async () => {
    const store = await storeOf(`store:
  type: redis
  url: rediss://redis:6380
  tls:
    caFile: secrets/ca.pem
    certFile: secrets/client.pem
    keyFile: secrets/client-key.pem
    servername: redis.internal
`);
    expect(store).toMatchObject({ tls: { ca: PEM.ca, cert: PEM.cert, key: PEM.key, servername: 'redis.internal' } });
  });

  it('allows tls with Cluster nodes', async () => {
    const store = await storeOf("store:\n  type: redis\n  nodes: ['10.0.0.1:6379']\n  tls:\n    caFile: secrets/ca.pem\n");
    expect(store).toMatchObject({ tls: { ca: PEM.ca } });
  });
});

describe('store config: problems', () => {
  it('needs exactly one of url and nodes for redis', async () => {
    const neither = 'store:\n  type: redis\n';
    const both = "store:\n  type: redis\n  url: redis://redis:6379\n  nodes: ['10.0.0.1:6379']\n";
    const message = "store type 'redis' needs exactly one of url (one server) and nodes (a Cluster)";
    expect(await onlyProblem(configWith(neither))).toBe(`2:9 ${message}`);
    expect(await onlyProblem(configWith(both))).toBe(`2:9 ${message}`);
  });

  it('refuses Redis settings on a memory store', async () => {
    expect(await onlyProblem(configWith('store:\n  type: memory\n  url: redis://redis:6379\n'))).toBe(
      "3:8 store.url applies only to store type 'redis'",
    );
    const problems = await problemsOf(configWith('store:\n  type: memory\n  keyPrefix: "x:"\n  passwordFile: secrets/redis-password\n'));
    expect(problems.map((p) => `${p.line}:${p.col} ${p.message}`)).toEqual([
      "3:14 store.keyPrefix applies only to store type 'redis'",
      "4:17 store.passwordFile applies only to store type 'redis'",
    ]);
  });

  it('wants the password once', async () => {
    const message = 'give the Redis password once: in the url, password or passwordFile';
    const inUrlAndFile = 'store:\n  type: redis\n  url: redis://:pw@redis:6379\n  passwordFile: secrets/redis-password\n';
    const inUrlAndInline = 'store:\n  type: redis\n  url: redis://:pw@redis:6379\n  password: pw\n';
    const inlineAndFile = 'store:\n  type: redis\n  url: redis://redis:6379\n  password: pw\n  passwordFile: secrets/redis-password\n';
    expect(await onlyProblem(configWith(inUrlAndFile))).toBe(`4:17 ${message}`);
    expect(await onlyProblem(configWith(inUrlAndInline))).toBe(`4:13 ${message}`);
    expect(await onlyProblem(configWith(inlineAndFile))).toBe(`5:17 ${message}`);
  });

  it('wants the username once', async () => {
    expect(await onlyProblem(configWith('store:\n  type: redis\n  url: redis://gw:pw@redis:6379\n  username: other\n'))).toBe(
      '4:13 give the Redis username once: in the url or username',
    );
  });

  it('refuses tls with a plain redis:// url', async () => {
    expect(await onlyProblem(configWith('store:\n  type: redis\n  url: redis://redis:6379\n  tls:\n    caFile: secrets/ca.pem\n'))).toBe(
      '5:5 store.tls needs a rediss:// url (redis:// is plain text)',
    );
  });

  it('wants certFile and keyFile together, naming the one given', async () => {
    const message = 'store.tls.certFile and store.tls.keyFile go together';
    const certOnly = 'store:\n  type: redis\n  url: rediss://redis:6380\n  tls:\n    certFile: secrets/client.pem\n';
    const keyOnly = 'store:\n  type: redis\n  url: rediss://redis:6380\n  tls: { keyFile: secrets/client-key.pem }\n';
    expect(await onlyProblem(configWith(certOnly))).toBe(`5:15 ${message}`);
    expect(await onlyProblem(configWith(keyOnly))).toBe(`4:19 ${message}`);
  });

  it('reports a passwordFile it cannot read at the file name', async () => {
    const problems = await problemsOf(configWith('store:\n  type: redis\n  url: redis://redis:6379\n  passwordFile: secrets/missing\n'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: configFile(), line: 4, col: 17 });
    expect(problems[0]!.message).toMatch(/^cannot read passwordFile 'secrets\/missing': .*ENOENT/);
  });

  it('reports a TLS file it cannot read at the file name', async () => {
    const problems = await problemsOf(configWith('store:\n  type: redis\n  url: rediss://redis:6380\n  tls:\n    caFile: secrets/no-ca.pem\n'));
    expect(problems.map((p) => [p.line, p.col])).toEqual([[5, 13]]);
    expect(problems[0]!.message).toMatch(/^cannot read tls\.caFile 'secrets\/no-ca.pem': /);
  });

  it('refuses zero Redis timeouts', async () => {
    const problems = await problemsOf(configWith('store:\n  type: redis\n  url: redis://redis:6379\n  commandTimeout: 0ms\n  connectTimeout: 0s\n'));
    expect(problems.map((p) => `${p.line}:${p.col} ${p.message}`)).toEqual([
      '4:19 store.commandTimeout must be longer than 0',
      '5:19 store.connectTimeout must be longer than 0',
    ]);
  });

  it('refuses a Cluster node without a port', async () => {
    expect(await onlyProblem(configWith('store:\n  type: redis\n  nodes:\n    - 127.0.0.1:7000\n    - localhost\n'))).toBe(
      '5:7 store.nodes.1 has an invalid value (host:port)',
    );
  });

  it('refuses a Cluster node port outside 1..65535', async () => {
    expect(await onlyProblem(configWith("store:\n  type: redis\n  nodes: ['127.0.0.1:99999']\n"))).toBe(
      "3:11 store.nodes.0 '127.0.0.1:99999' needs a port from 1 to 65535",
    );
  });

  it('refuses a url that does not parse', async () => {
    expect(await onlyProblem(configWith('store:\n  type: redis\n  url: "redis://[oops"\n'))).toBe("3:8 store.url 'redis://[oops' is not a valid URL");
  });
});

describe('routes: onStoreError and reserved paths', () => {
  it('defaults onStoreError to deny and accepts allow', async () => {
    expect((await parseConfig(configFile(), configWith())).routes[0]!.onStoreError).toBe('deny');
    expect((await parseConfig(configFile(), configWith('', '    onStoreError: allow\n'))).routes[0]!.onStoreError).toBe('allow');
    expect((await parseConfig(configFile(), configWith('', '    onStoreError: deny\n'))).routes[0]!.onStoreError).toBe('deny');
  });

  it('refuses any other onStoreError', async () => {
    expect(await onlyProblem(configWith('', '    onStoreError: maybe\n'))).toBe('8:19 routes.0.onStoreError must be one of "deny", "allow"');
  });

  it('reserves /readyz for the readiness endpoint', async () => {
    expect(await onlyProblem(configWith().replace('path: /mcp', 'path: /readyz'))).toBe(
      "5:11 route path '/readyz' is reserved for the gateway's health endpoints",
    );
  });
});
