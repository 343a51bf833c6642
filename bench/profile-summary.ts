/**
 * Summarises V8 CPU profiles (.cpuprofile, as `node --cpu-prof` writes them; `npm run bench --
 * --cpu-prof DIR` has the gateways of rows c and d, and the bare hops, write one each at exit):
 *
 *   node dist/bench/profile-summary.js DIR|FILE… [--top N]
 *
 * Prints, per profile: where busy time went by origin (the gateway's own code, each package,
 * Node internals, GC); the functions with the most self time; the gateway's own functions by
 * self time and by total time (self plus everything they call); and time attributed to the
 * nearest frame outside Node's internals, by file, so that stream and socket work counts for the
 * code that asked for it.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { table } from './report.js';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

type Origin = 'gateway (src/)' | 'node internals' | 'garbage collector' | 'idle' | 'program' | 'other' | `package ${string}`;

/** Where a frame's code comes from. */
export function originOf(frame: CallFrame): Origin {
  if (frame.url === '') {
    if (frame.functionName === '(garbage collector)') return 'garbage collector';
    if (frame.functionName === '(idle)') return 'idle';
    if (frame.functionName === '(program)' || frame.functionName === '(root)') return 'program';
    // Builtins without a script (JSON.parse, RegExp, Map…): count them with Node's own.
    return 'node internals';
  }
  if (frame.url.startsWith('node:')) return 'node internals';
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(frame.url);
  if (pkg) return `package ${pkg[1]}`;
  if (/\/dist\/src\//.test(frame.url)) return 'gateway (src/)';
  return 'other';
}

/** dist/src/http/relay.js → src/http/relay.ts; anything else: the path after node_modules, or the URL. */
function shortFile(url: string): string {
  const ours = /\/dist\/(src\/.*)\.js$/.exec(url);
  if (ours) return `${ours[1]}.ts`;
  const pkg = /\/node_modules\/(.*)$/.exec(url);
  if (pkg) return pkg[1]!;
  return url.replace(/^file:\/\//, '');
}

const frameKey = (frame: CallFrame) => `${frame.functionName || '(anonymous)'} ${shortFile(frame.url)}:${frame.lineNumber + 1}`;

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  readonly busyMs: number;
  readonly byOrigin: readonly (readonly [string, number])[];
  readonly topSelf: readonly (readonly [string, number])[];
  readonly oursSelf: readonly (readonly [string, number])[];
  readonly oursTotal: readonly (readonly [string, number])[];
  readonly attributedByFile: readonly (readonly [string, number])[];
}

export function summarizeProfile(file: string, profile: CpuProfile, top: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const add = (map: Map<string, number>, key: string, micros: number) => map.set(key, (map.get(key) ?? 0) + micros);
  const byOrigin = new Map<string, number>();
  const selfByFrame = new Map<string, number>();
  const oursSelf = new Map<string, number>();
  const oursTotal = new Map<string, number>();
  const attributed = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, micros] of self) {
    const node = byId.get(id)!;
    const origin = originOf(node.callFrame);
    total += micros;
    if (origin === 'idle') {
      idle += micros;
      continue;
    }
    add(byOrigin, origin, micros);
    add(selfByFrame, `${frameKey(node.callFrame)}  [${origin}]`, micros);
    if (origin === 'gateway (src/)') add(oursSelf, frameKey(node.callFrame), micros);
    // Total time: each of our functions once per sample, however deep it recurses.
    const seen = new Set<string>();
    let attributedTo: string | undefined;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      const frameOrigin = originOf(frame);
      if (attributedTo === undefined && frameOrigin !== 'node internals' && frameOrigin !== 'program') {
        attributedTo = frameOrigin === 'garbage collector' ? '(garbage collector)' : shortFile(frame.url);
      }
      if (frameOrigin !== 'gateway (src/)') continue;
      const key = frameKey(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      add(oursTotal, key, micros);
    }
    add(attributed, attributedTo ?? '(node internals, no user frame)', micros);
  }
  const sorted = (map: Map<string, number>, n = top) => [...map].sort((x, y) => y[1] - x[1]).slice(0, n);
  return {
    file,
    totalMs: total / 1000,
    busyMs: (total - idle) / 1000,
    byOrigin: sorted(byOrigin, 100),
    topSelf: sorted(selfByFrame),
    oursSelf: sorted(oursSelf),
    oursTotal: sorted(oursTotal),
    attributedByFile: sorted(attributed),
  };
}

export function formatProfileSummary(summary: ProfileSummary): string {
  const busy = summary.busyMs * 1000;
  const pct = (micros: number) => `${((micros / busy) * 100).toFixed(1)}%`;
  const msOf = (micros: number) => (micros / 1000).toFixed(0);
  const section = (title: string, rows: readonly (readonly [string, number])[]) =>
    [title, table(['', 'ms', '% of busy'], rows.map(([name, micros]) => [name, msOf(micros), pct(micros)]))].join('\n');
  return [
    `### ${summary.file}: ${summary.totalMs.toFixed(0)} ms sampled, ${summary.busyMs.toFixed(0)} ms busy (not idle)`,
    section('busy time by origin (self time)', summary.byOrigin),
    section('functions by self time', summary.topSelf),
    section("the gateway's own functions (src/) by self time", summary.oursSelf),
    section("the gateway's own functions (src/) by total time (self + callees)", summary.oursTotal),
    section('self time attributed to the nearest frame outside Node internals, by file', summary.attributedByFile),
  ].join('\n\n');
}

async function profileFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    if ((await stat(path)).isDirectory()) {
      for (const name of (await readdir(path)).sort()) if (name.endsWith('.cpuprofile')) files.push(join(path, name));
    } else files.push(path);
  }
  return files;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string' } }, allowPositionals: true });
  if (positionals.length === 0) {
    process.stderr.write('usage: node dist/bench/profile-summary.js DIR|FILE.cpuprofile… [--top N]\n');
    process.exit(2);
  }
  const top = Number(values.top ?? 25);
  for (const file of await profileFiles(positionals)) {
    const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
    process.stdout.write(`${formatProfileSummary(summarizeProfile(basename(file), profile, top))}\n\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
