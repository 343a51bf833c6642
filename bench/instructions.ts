/**
 * `npm run bench:instructions`: CPU per request as a count, not a time. The throughput and p99
 * figures of `npm run bench` move by 10–250% on a shared 2-core VM; what the gateway costs a
 * request in its own instructions does not. Each target (the bare node:http hop the gateway
 * forwards on, the gateway at info and at warn) runs under
 * valgrind's callgrind, V8 single-threaded and on a predictable GC schedule (so a target counts
 * the same from run to run within about 0.1%), answering small calls from the lean upstream one at a
 * time: warmed up, counters zeroed, N calls, counters dumped. User-space instructions only: the
 * kernel's share of a write is not in them, and JIT-compiled code cannot be attributed to
 * functions here (that is what `npm run bench -- --cpu-prof` is for).
 *
 * One call at a time, each of a gateway's batched log writes carries about one request, so the
 * info-minus-warn difference is an upper bound on what logging costs under load.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { obtainAccessToken, startDevIdp } from '../dev/idp.js';
import { firstJsonLine, spawnNode, type Child } from './children.js';
import { Cleanup } from './cleanup.js';
import { RESOURCE, startGatewayProcess } from './gateway-process.js';
import { mcpHeaders, openSession, WORKLOADS } from './mcp.js';
import { GATEWAY_ROUTES } from './stack.js';

const USAGE = `usage: npm run bench:instructions -- [options]

  --requests N    counted calls per target                   (default 3000)
  --warmup N      calls before counting (JIT, caches)        (default 12000: V8 is still
                  compiling the hot path for the first ~10,000 calls one at a time)
  --out FILE      JSON report                                (default bench/results/instructions.json)
  --keep DIR      keep each target's callgrind profile of the counted calls as
                  DIR/<target>.callgrind, for callgrind_annotate (native code by function:
                  V8's runtime and garbage collector, libuv, llhttp; JIT code is one lump)

To compare two builds, run it in each checkout and compare a target with itself: the same
target repeats within 0.1% from run to run, but two gateway processes of one build, run side by
side, counted up to 19% apart (at info each log batch waits 10 ms of wall time, so a slower call
means fewer calls per write; a late deoptimisation adds its own).

Needs valgrind (Debian: apt-get install valgrind). About 12-15 minutes; targets run two at a time.`;

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const log = (line: string) => process.stderr.write(`${line}\n`);
const PATH = '/mcp-lean';
/** V8 on one thread with a GC schedule that does not depend on timers: the same count each run. */
const NODE_FLAGS = ['--single-threaded', '--predictable-gc-schedule'];

interface Target {
  readonly name: string;
  readonly label: string;
  start(wrapper: readonly string[]): Promise<{ child: Child; origin: string; token: string | undefined }>;
}

interface Counted {
  readonly name: string;
  readonly label: string;
  readonly instructionsPerRequest: number;
  /** Of those, V8's optimizing compilers (TurboFan, Maglev): what a warm-up too short leaves in the count. */
  readonly compilerPerRequest: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { requests: { type: 'string' }, warmup: { type: 'string' }, out: { type: 'string' }, keep: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) return void log(USAGE);
  const requests = positive(values.requests ?? '3000', '--requests');
  const warmup = positive(values.warmup ?? '12000', '--warmup');
  const out = resolve(values.out ?? 'bench/results/instructions.json');
  const keep = values.keep === undefined ? undefined : resolve(values.keep);
  if (keep !== undefined) await mkdir(keep, { recursive: true });
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('valgrind is not installed (Debian: apt-get install valgrind)');
  }

  const cleanup = new Cleanup();
  cleanup.exitOnSignals();
  try {
    const dir = await mkdtemp(join(tmpdir(), 'mcp-auth-gateway-instructions-'));
    cleanup.defer('temp dir', () => rm(dir, { recursive: true, force: true }));
    const idp = await startDevIdp({ scopes: ['todo:read'], accessTokenTtlSeconds: 24 * 60 * 60, accessTokenFormat: 'jwt' });
    cleanup.defer('development IdP', () => idp.close());
    const { accessToken } = await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', subject: 'bench' });
    const upstream = spawnNode('upstream', here('./upstream-process.js'), []);
    cleanup.defer('upstream', () => upstream.stop());
    const upstreamOrigin = String((await firstJsonLine(upstream)).origin);

    const gateway = (name: string, label: string, extra: { logLevel?: 'warn' }): Target => ({
      name,
      label,
      async start(wrapper) {
        const running = await startGatewayProcess(dir, {
          name,
          issuer: { kind: 'jwt', issuer: idp.issuer },
          upstreamOrigin,
          routes: GATEWAY_ROUTES,
          store: { type: 'memory' },
          nodeFlags: NODE_FLAGS,
          wrapper,
          readyTimeoutMs: 180_000,
          ...extra,
        });
        return { child: running.child, origin: running.origin, token: accessToken };
      },
    });
    const targets: Target[] = [
      {
        name: 'hop-node-http',
        label: 'bare node:http hop',
        async start(wrapper) {
          const child = spawnNode('bare node:http hop', here('./proxy-process.js'), [upstreamOrigin, 'node-http'], NODE_FLAGS, wrapper);
          return { child, origin: String((await firstJsonLine(child, 180_000)).origin), token: undefined };
        },
      },
      gateway('gateway-info', 'gateway, JWT + policy, log level info', {}),
      gateway('gateway-warn', 'gateway, JWT + policy, log level warn', { logLevel: 'warn' }),
    ];

    log(`instructions per small call (lean upstream), ${requests} counted after ${warmup} warm-up calls, one at a time; targets two at a time under callgrind`);
    const counted: Counted[] = [];
    for (let i = 0; i < targets.length; i += 2) {
      const pair = targets.slice(i, i + 2);
      counted.push(...(await Promise.all(pair.map((target) => count(target, dir, warmup, requests, keep)))));
    }
    const hop = counted.find((c) => c.name === 'hop-node-http')!.instructionsPerRequest;
    for (const c of counted) {
      const thousands = (n: number) => `${Math.round(n / 1000).toLocaleString('en')}k`;
      log(`  ${c.label.padEnd(48)} ${thousands(c.instructionsPerRequest).padStart(7)} instructions/request  ${(c.instructionsPerRequest / hop).toFixed(2)}× the hop  (compiling: ${thousands(c.compilerPerRequest)})`);
    }
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, requests, warmup, nodeFlags: NODE_FLAGS, targets: counted }, null, 2)}\n`);
    log(`written to ${out}`);
  } finally {
    await cleanup.run();
  }
}

/** One target under callgrind: started, warmed up, counted over `requests` calls, stopped. */
async function count(target: Target, dir: string, warmup: number, requests: number, keep: string | undefined): Promise<Counted> {
  const outFile = join(dir, `${target.name}.callgrind`);
  const { child, origin, token } = await target.start(['valgrind', '--tool=callgrind', `--callgrind-out-file=${outFile}`]);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const url = origin + PATH;
    const headers = mcpHeaders(token, await openSession(url, token));
    const body = WORKLOADS.find((workload) => workload.id === 'call-lean')!.body;
    let id = 0;
    const calls = async (n: number) => {
      for (let i = 0; i < n; i++) await call(agent, url, headers, body.replaceAll('[<id>]', String(++id)));
    };
    await calls(warmup);
    const pid = String(child.process.pid);
    execFileSync('callgrind_control', ['--zero', pid], { stdio: 'ignore' });
    await calls(requests);
    execFileSync('callgrind_control', ['--dump', pid], { stdio: 'ignore' });
    const { total, compiler, file } = await dumpedCounts(dir, `${target.name}.callgrind.`);
    if (keep !== undefined) await copyFile(file, join(keep, `${target.name}.callgrind`));
    log(`  ${target.name}: ${total.toLocaleString('en')} instructions over ${requests} calls, ${compiler.toLocaleString('en')} of them compiling`);
    return { name: target.name, label: target.label, instructionsPerRequest: Math.round(total / requests), compilerPerRequest: Math.round(compiler / requests) };
  } finally {
    agent.destroy();
    await child.stop();
  }
}

/**
 * The totals of the first dump callgrind writes (`<file>.1`), once it is complete: all
 * instructions, and the self cost of V8's optimizing compilers' functions.
 */
async function dumpedCounts(dir: string, prefix: string): Promise<{ total: number; compiler: number; file: string }> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    for (const name of await readdir(dir)) {
      if (!name.startsWith(prefix)) continue;
      const text = await readFile(join(dir, name), 'utf8');
      const total = /^totals: (\d+)/m.exec(text);
      if (total) return { total: Number(total[1]), compiler: compilerSelfCost(text), file: join(dir, name) };
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`callgrind wrote no dump ${prefix}* within 60 s`);
}

const COMPILER = /v8::internal::(?:compiler|maglev)::/;

/**
 * Sums the self cost of the compiler's functions in a callgrind profile (its text format: an
 * `fn=(id) name` line starts a function's cost lines, `position cost`; the line after each
 * `calls=` is an inclusive cost of the callee, not the function's own).
 */
function compilerSelfCost(text: string): number {
  const names = new Map<string, string>();
  let inCompiler = false;
  let callee = false;
  let cost = 0;
  for (const line of text.split('\n')) {
    const named = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(line);
    if (named) {
      if (named[2] !== undefined) names.set(named[1]!, named[2]);
      if (line.startsWith('fn=')) inCompiler = COMPILER.test(names.get(named[1]!) ?? '');
    } else if (line.startsWith('calls=')) callee = true;
    else if (/^[0-9+*-]/.test(line)) {
      if (callee) callee = false;
      else if (inCompiler) cost += Number(line.split(' ')[1] ?? 0);
    }
  }
  return cost;
}

function call(agent: Agent, url: string, headers: Record<string, string>, body: string): Promise<void> {
  return new Promise((done, fail) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      res.resume();
      res.once('end', () => (res.statusCode === 200 ? done() : fail(new Error(`${url} answered ${res.statusCode}`))));
    });
    req.once('error', fail);
    req.end(body);
  });
}

function positive(text: string, option: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${option} must be a positive integer, not ${JSON.stringify(text)}`);
  return n;
}

main().catch((error: unknown) => {
  log(`bench:instructions: ${(error as Error).message}`);
  process.exitCode = 1;
});
