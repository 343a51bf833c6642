import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevIdp, type DevIdp } from '../../dev/idp.js';
import { BIN, runCli } from '../support/gateway-process.js';
import { TODO_POLICY } from '../support/stack.js';

/** The published command line, run as users run it: the built `bin` in a child process. */
const run = runCli;

/** Starts `serve`, resolving with the child and the URL from its "gateway listening" log line. */
function serve(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolveServe, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'gateway listening') resolveServe({ child, url: entry.url! });
    });
    child.once('exit', (code) => reject(new Error(`gateway exited early with ${code}`)));
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((done) => child.once('exit', (code) => done(code)));
}

describe('mcp-auth-gateway command line', () => {
  let dir: string;
  let idp: DevIdp;
  let good: string;

  beforeAll(async () => {
    expect(existsSync(BIN), 'dist/src/bin.js is missing: run `npm run build` (npm test does)').toBe(true);
    idp = await startDevIdp({ scopes: ['todo:read'] });
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-cli-'));
    await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
    good = join(dir, 'gateway.yaml');
    await writeFile(
      good,
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        'log: { level: info }',
        'issuers:',
        `  - issuer: ${idp.issuer}`,
        'routes:',
        '  - { name: todo, path: /mcp, upstream: "http://127.0.0.1:1/mcp", policy: todo.yaml }',
      ].join('\n'),
    );
    await writeFile(
      join(dir, 'bad.yaml'),
      ['listen: { port: "eighty" }', 'issuers: []', 'routes:', '  - name: todo', '    path: mcp', '    upstream: http://127.0.0.1:1/mcp', '    policy: broken.yaml'].join('\n'),
    );
    await writeFile(join(dir, 'broken.yaml'), 'tools:\n  list_todos: allow\n');
  });
  afterAll(async () => {
    await idp?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('exits non-zero naming file:line:col for every problem, across config and policy', async () => {
    const { code, stderr } = await run(['--config', join(dir, 'bad.yaml')]);
    expect(code).toBe(2);
    const bad = join(dir, 'bad.yaml');
    expect(stderr).toContain(`${bad}:1:17: listen.port must be integer`);
    expect(stderr).toContain(`${bad}:2:10: issuers must NOT have fewer than 1 items`);
    expect(stderr).toContain(`${bad}:5:11: routes.0.path has an invalid value (an absolute path such as /mcp`);
    expect(stderr).toContain(`${join(dir, 'broken.yaml')}:2:15: tools.list_todos must be a list of scopes, deny, or {scopes | anyOf, when, arguments, rateLimit}`);
  });

  it('validate prints OK for a good config', async () => {
    const { code, stdout } = await run(['validate', '--config', good]);
    expect(code).toBe(0);
    expect(stdout).toContain('OK (1 route)');
  });

  it('--version prints the version of the package.json it is installed with, read when asked', async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(await run(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    // The same build in another package of the same name says that package's version: no copy
    // of the version is built in.
    const other = await mkdtemp(join(tmpdir(), 'mcp-gw-version-'));
    try {
      await cp('dist', join(other, 'dist'), { recursive: true });
      await symlink(await realpath('node_modules'), join(other, 'node_modules'));
      await writeFile(join(other, 'package.json'), JSON.stringify({ name: 'mcp-auth-gateway', version: '9.8.7-other', type: 'module' }));
      const { stdout } = await promisify(execFile)(process.execPath, [join(other, 'dist/src/bin.js'), '--version']);
      expect(stdout).toBe('9.8.7-other\n');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('refuses to start without --config', async () => {
    const { code, stderr } = await run([]);
    expect(code).not.toBe(0);
    expect(stderr).toContain('--config');
  });

  for (const args of [['--config'], ['serve', '--config']]) {
    it(`serves with \`${args.join(' ')} FILE\` and exits 0 on SIGTERM`, async () => {
      const { child, url } = await serve([...args, good]);
      try {
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
        const challenge = await fetch(`${url}/mcp`, { method: 'POST', body: '{}' });
        expect(challenge.status).toBe(401);
        expect(challenge.headers.get('www-authenticate')).toContain('resource_metadata=');
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exitOf(child)).toBe(0);
    });
  }
});
