import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { RESTART_ONLY_KEYS, settleReload } from '../../src/config/restart-only.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { makeSelfSignedCert } from '../support/hardening-stack.js';
import { minimalConfig } from '../support/config-fixtures.js';
import { TODO_POLICY } from '../support/stack.js';

/**
 * Issue 23 item 15: one list of restart-only settings decides what a reload keeps and what its
 * warning names, and the docs say the same (docs/operations.md's "Hot reload" sentence and
 * docs/configuration.md's table are read here, so neither can drift from the code).
 */
const OPERATIONS = readFileSync('docs/operations.md', 'utf8');
const CONFIGURATION = readFileSync('docs/configuration.md', 'utf8');

/** The backticked names in the sentence of the "Hot reload" paragraph ending in `ending`. */
function readmeSentence(ending: string): string[] {
  const paragraph = OPERATIONS.slice(OPERATIONS.indexOf('## Hot reload\n') + '## Hot reload\n'.length).trimStart().split('\n\n')[0]!.replace(/\s+/g, ' ');
  const sentences = paragraph.split(/(?<=[.:]) (?=`|[A-Z])/);
  const sentence = sentences.find((s) => s.includes(ending));
  if (!sentence) throw new Error(`no Hot reload sentence with '${ending}'`);
  return [...sentence.slice(0, sentence.indexOf(ending)).matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
}

/** The configuration table's rows: the first key each names, and its meaning. */
function tableRows(): { key: string; meaning: string }[] {
  const table = CONFIGURATION.split('\n\n').find((block) => block.startsWith('| key |'))!;
  return table
    .split('\n')
    .slice(2)
    .map((row) => ({ key: /^\| `([^`]+)`/.exec(row)![1]!, meaning: row.replace(/ \|$/, '').split(' | ').at(-1)! }));
}

const under = (name: string, key: string) => name === key || name.startsWith(`${key}.`);
const sorted = (list: readonly string[]) => [...list].sort();
const withoutRoutes = ({ routes: _routes, ...rest }: GatewayConfig) => rest;

describe('restart-only settings: code and docs agree', () => {
  it("the Hot reload paragraph names exactly the restart-only keys, and the reloadable ones apart", () => {
    expect(sorted(readmeSentence(' change only on restart'))).toEqual(sorted(RESTART_ONLY_KEYS));
    const reloadable = readmeSentence(' are applied on reload');
    expect(reloadable).toEqual(['limits.maxBodyBytes', 'timeouts.upstreamConnect', 'timeouts.upstreamResponse', 'timeouts.issuerDiscovery']);
    for (const key of reloadable) expect(RESTART_ONLY_KEYS.some((restart) => under(key, restart)), key).toBe(false);
  });

  it('the configuration table marks a row "Changes only on restart" exactly when its key is restart-only', () => {
    const rows = tableRows();
    expect(rows.length).toBeGreaterThan(50);
    for (const { key, meaning } of rows) {
      const restartOnly = RESTART_ONLY_KEYS.some((restart) => under(key, restart));
      expect(meaning.endsWith('. Changes only on restart'), `${key}: ${meaning}`).toBe(restartOnly);
    }
    // Every restart-only key has a row: none is promised in the paragraph and missing here.
    for (const restart of RESTART_ONLY_KEYS) expect(rows.some(({ key }) => under(key, restart)), restart).toBe(true);
    const marked = rows.filter(({ meaning }) => meaning.endsWith('. Applied on reload')).map(({ key }) => key);
    expect(marked).toEqual(readmeSentence(' are applied on reload'));
  });
});

describe('settleReload', () => {
  let dir: string;
  const load = (head: string) => parseConfig(join(dir, 'gateway.yaml'), minimalConfig({ head }));
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-restart-only-'));
    await mkdir(join(dir, 'policies'));
    await writeFile(join(dir, 'policies', 'todo.yaml'), TODO_POLICY);
    await makeSelfSignedCert(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** For each restart-only key, a config that changes it (and nothing else) from the defaults. */
  const RESTART_ONLY_CHANGES: Record<string, string> = {
    listen: 'listen: { port: 9999 }\n',
    publicUrl: 'publicUrl: https://gateway.example.test\n',
    store: 'store: { type: redis, url: "redis://127.0.0.1:6390" }\n',
    log: 'log: { level: debug }\n',
    tracing: 'tracing: { endpoint: "http://127.0.0.1:4318/v1/traces" }\n',
    identityToken: 'identityToken: { ttl: 30s }\n',
    tls: 'tls: { certFile: cert.pem, keyFile: key.pem }\n',
    admin: 'admin: { listen: { port: 9901 } }\n',
    trustedProxies: 'trustedProxies: [10.0.0.0/8]\n',
    shutdown: 'shutdown: { gracePeriod: 5s }\n',
    'limits.maxHeaderBytes': 'limits: { maxHeaderBytes: 8192 }\n',
    'limits.maxHeaders': 'limits: { maxHeaders: 50 }\n',
    'limits.maxConnections': 'limits: { maxConnections: 100 }\n',
    'timeouts.headers': 'timeouts: { headers: 5s }\n',
    'timeouts.request': 'timeouts: { request: 60s }\n',
    'timeouts.idle': 'timeouts: { idle: 2s }\n',
  };

  it('keeps each restart-only setting as started and names exactly that key', async () => {
    expect(sorted(Object.keys(RESTART_ONLY_CHANGES))).toEqual(sorted(RESTART_ONLY_KEYS));
    const started = await load('');
    for (const [key, head] of Object.entries(RESTART_ONLY_CHANGES)) {
      const next = await load(head);
      expect(next, key).not.toEqual(started);
      const { config, keptAsStarted } = settleReload(started, next);
      expect(keptAsStarted, key).toEqual([key]);
      // Everything as started; the routes (compiled policies, with their own functions) are the new ones.
      expect(withoutRoutes(config), key).toEqual(withoutRoutes(started));
      expect(config.routes).toBe(next.routes);
    }
  });

  it('applies every reloadable setting, limits and timeouts included, without naming it', async () => {
    const started = await load('');
    const next = await load(
      [
        'limits: { maxBodyBytes: 2048 }',
        'timeouts: { upstreamConnect: 1s, upstreamResponse: 3s, issuerDiscovery: 2s }',
        'sessions: { idleTimeout: 1h }',
        'allowedOrigins: [https://app.example.test]',
        '',
      ].join('\n'),
    );
    const { config, keptAsStarted } = settleReload(started, next);
    expect(keptAsStarted).toEqual([]);
    expect(withoutRoutes(config)).toEqual(withoutRoutes(next));
    expect([config.maxBodyBytes, config.server.upstreamConnectTimeoutMs, config.upstreamResponseTimeoutMs, config.issuerDiscoveryTimeoutMs]).toEqual([2048, 1000, 3000, 2000]);
  });

  it('splits one section: a reloadable limit is applied while a restart-only one beside it is kept and named', async () => {
    const started = await load('limits: { maxBodyBytes: 4096, maxHeaders: 20 }\ntimeouts: { idle: 1s, upstreamResponse: 1s }\n');
    const next = await load('limits: { maxBodyBytes: 8192, maxHeaders: 80 }\ntimeouts: { idle: 3s, upstreamResponse: 4s }\n');
    const { config, keptAsStarted } = settleReload(started, next);
    expect(keptAsStarted).toEqual(['limits.maxHeaders', 'timeouts.idle']);
    expect([config.maxBodyBytes, config.server.maxHeaders, config.server.idleTimeoutMs, config.upstreamResponseTimeoutMs]).toEqual([8192, 20, 1000, 4000]);
  });

  it('a setting present at startup and removed by the reload is kept, and one absent at startup stays absent', async () => {
    const withTls = await load(RESTART_ONLY_CHANGES.tls!);
    const without = await load('');
    expect(settleReload(withTls, without).config.server.tls).toEqual(withTls.server.tls);
    const added = settleReload(without, withTls);
    expect(added.keptAsStarted).toEqual(['tls']);
    expect(added.config.server.tls).toBeUndefined();
  });
});
