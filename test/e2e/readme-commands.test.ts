/**
 * The README's "Run it" commands, run as written from the repository root (a fresh clone after
 * `npm ci && npm run build`): each must succeed, and where the README shows a command's output
 * (`#   …` lines under it), print exactly that. A command naming a file the repository does not
 * have fails here. Only the binary is swapped: `npx mcp-auth-gateway` becomes the built bin run
 * by this Node, except in the one test that checks npx itself finds it.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../support/gateway-process.js';
import { shellWords } from '../support/shell-words.js';

const ROOT = process.cwd();
const INVOCATION = ['npx', 'mcp-auth-gateway'];

interface ReadmeCommand {
  readonly line: string;
  readonly args: string[];
  /** The `#   …` lines the README prints under it: its stdout. */
  readonly output: string[];
}

/** Every command in the sh blocks of one README section, with the output shown under it. */
function sectionCommands(readme: string, heading: string): ReadmeCommand[] {
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const commands: ReadmeCommand[] = [];
  for (const block of section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    for (const line of block[1]!.split('\n')) {
      const shown = /^# {3}(.*)$/.exec(line);
      if (shown) commands.at(-1)?.output.push(shown[1]!);
      if (line.trim() === '' || line.startsWith('#')) continue;
      const words = shellWords(line);
      if (words[0] === 'npm' || words[0] === 'docker') continue;
      expect(words.slice(0, 2), `a README command run another way: ${line}`).toEqual(INVOCATION);
      commands.push({ line, args: words.slice(2), output: [] });
    }
  }
  return commands;
}

function run(cwd: string, command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** Starts a serving command, waits for "gateway listening", then stops it with SIGTERM: its exit code. */
function serveAndStop(cwd: string, args: string[]): Promise<number | null> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      if ((JSON.parse(line) as { msg?: string }).msg === 'gateway listening') child.kill('SIGTERM');
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') reject(new Error(`${args.join(' ')} never listened: ${stderr}`));
      else resolve(code);
    });
  });
}

const isServe = (args: string[]) => args[0] === 'serve' || args[0] === '--config' || args[0] === '-c';
const commands = sectionCommands(readFileSync('README.md', 'utf8'), 'Run it');

describe('the README\'s "Run it" commands, as written', () => {
  let copy: string;

  beforeAll(async () => {
    expect(existsSync(BIN), 'dist/src/bin.js is missing: run `npm run build` (npm test does)').toBe(true);
    // Serving binds the config's port (8080); tests take a free one, in a copy of the repository's
    // example files that differs in that line only. A command naming a file the repository lacks
    // finds it missing here as well.
    copy = await mkdtemp(join(tmpdir(), 'mcp-gw-readme-'));
    await cp(join(ROOT, 'policies'), join(copy, 'policies'), { recursive: true });
    const example = await readFile(join(ROOT, 'gateway.example.yaml'), 'utf8');
    const freePort = example.replace(/^( {2}port: )8080$/m, '$10');
    expect(freePort).not.toBe(example);
    await writeFile(join(copy, 'gateway.example.yaml'), freePort);
  });
  afterAll(async () => {
    if (copy) await rm(copy, { recursive: true, force: true });
  });

  it('are there: serving, validate, --version, explain and test', () => {
    const subcommands = commands.map((c) => (isServe(c.args) ? 'serve' : c.args[0]));
    expect(new Set(subcommands)).toEqual(new Set(['serve', 'validate', '--version', 'explain', 'test']));
  });

  for (const command of commands) {
    it(command.line, async () => {
      if (isServe(command.args)) {
        expect(await serveAndStop(copy, command.args)).toBe(0);
        return;
      }
      const { code, stdout, stderr } = await run(ROOT, process.execPath, [BIN, ...command.args]);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      if (command.output.length > 0) expect(stdout).toBe(`${command.output.join('\n')}\n`);
      else expect(stdout).not.toBe('');
    });
  }

  it('npx finds the command in a clone: the bin of the package.json it is run beside', async () => {
    // Never anything from the registry (--offline, --yes=false), should the local bin not be found.
    const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
    const { code, stdout } = await run(ROOT, npx, ['--yes=false', '--offline', 'mcp-auth-gateway', '--version']);
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect({ code, stdout }).toEqual({ code: 0, stdout: `${version}\n` });
  });
});
