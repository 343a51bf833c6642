/**
 * The measurements besides saturated throughput: startup to ready, the fixed-rate p99 run,
 * allocation per request, and idle SSE streams. Each starts the fresh processes it needs and
 * stops them before returning.
 */
import { fileURLToPath } from 'node:url';
import { traceGc, GC_TRACE_FLAGS } from './allocation.js';
import { processCpu, startCpuWindow, type Role } from './cpu.js';
import { firstJsonLine, spawnNode, type Child } from './children.js';
import { startGatewayProcess, type GatewayRoute } from './gateway-process.js';
import { measureIdleStreams, type IdleStreamsResult } from './idle-streams.js';
import { measure } from './load.js';
import { WORKLOADS, type Workload } from './mcp.js';
import { openFileLimit } from './memory.js';
import type { PacedMeasurement } from './paced.js';

/** A fixed-rate run, with the CPU each process spent per request (warm-up included, at the same rate). */
export interface FixedRateRun extends PacedMeasurement {
  readonly cpuMicrosPerRequest: Partial<Record<Role, number>>;
}
import { describeCauses, median, type AllocationSummary, type StartupSummary } from './report.js';
import type { BenchSettings, RowId } from './settings.js';
import { GATEWAY_ROUTES, openCellSession, type Cell, type CellSession, type Stack } from './stack.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const workload = (id: Workload['id']) => WORKLOADS.find((w) => w.id === id)!;

/** Spawn to first 200 from /readyz, `runs` times in a row, each a fresh process against the local dev IdP. */
export async function measureStartup(stack: Stack, runs: number): Promise<StartupSummary> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const gateway = await startGatewayProcess(stack.dir, {
      name: `gateway-startup-${i + 1}`,
      issuer: { kind: 'jwt', issuer: stack.jwt.issuer },
      upstreamOrigin: stack.upstreamOrigin,
      routes: GATEWAY_ROUTES,
      store: { type: 'memory' },
    });
    times.push(gateway.startupMs);
    await gateway.child.stop();
  }
  log(`startup to ready: ${times.map((t) => `${Math.round(t)} ms`).join(', ')}`);
  return { runs: times, medianMs: median(times) };
}

/**
 * Each given cell (small tools/call) at the same fixed rate, open loop, `settings.runs` times in
 * rounds, with a short warm-up at that rate before each run; the load comes from a fresh child
 * process each time (bench/paced-process.ts). `beforeRun` comes first (the upstream's GC).
 */
export async function measureFixedRate(cells: readonly Cell[], rate: number, settings: BenchSettings, beforeRun: () => Promise<void>): Promise<Map<RowId, FixedRateRun[]>> {
  const results = new Map<RowId, FixedRateRun[]>(cells.map((cell) => [cell.row.id, []]));
  for (let round = 1; round <= settings.runs; round++) {
    for (const cell of cells) {
      const [measured] = await pacedRun([cell], rate, settings, beforeRun);
      results.get(cell.row.id)!.push(measured!);
      log(`  fixed-rate run ${round}/${settings.runs} (${cell.row.id}): ${describeRun(measured!, rate)}`);
    }
  }
  return results;
}

/**
 * Two cells in the same runs: one generator sends `rate` requests per second in all, every other
 * one to each, so both rows go through every stall of the machine, the upstream and the
 * generator alike, and the difference of their latencies is what one adds over the other. On a
 * machine whose stalls spread single runs by more than that difference, this is how it is seen.
 */
export async function measureInterleaved(pair: readonly [Cell, Cell], rate: number, settings: BenchSettings, beforeRun: () => Promise<void>): Promise<(readonly [FixedRateRun, FixedRateRun])[]> {
  const runs: (readonly [FixedRateRun, FixedRateRun])[] = [];
  for (let round = 1; round <= settings.runs; round++) {
    const [first, second] = await pacedRun(pair, rate, settings, beforeRun);
    runs.push([first!, second!]);
    log(`  interleaved run ${round}/${settings.runs}: (${pair[0].row.id}) ${describeRun(first!, first!.rate)}`);
    log(`  ${' '.repeat(`interleaved run ${round}/${settings.runs}:`.length)} (${pair[1].row.id}) ${describeRun(second!, second!.rate)}; p99 difference ${(second!.latency.p99 - first!.latency.p99).toFixed(2)} ms`);
  }
  return runs;
}

/** One generator run over the cells' sessions (one endpoint each: row f is left out), with each process's CPU per request. */
async function pacedRun(cells: readonly Cell[], rate: number, settings: BenchSettings, beforeRun: () => Promise<void>): Promise<FixedRateRun[]> {
  const sessions: CellSession[] = [];
  try {
    for (const cell of cells) sessions.push(await openCellSession(cell));
    await beforeRun();
    const options = { endpoints: sessions.map((session) => session.endpoints[0]!), body: cells[0]!.workload.body, rate, seconds: settings.rateDurationSeconds, warmupSeconds: settings.warmupSeconds };
    const generator = spawnNode('fixed-rate load generator', here('./paced-process.js'), [JSON.stringify(options)]);
    try {
      // Each row's own processes (the upstream once), and the generator child in place of this process.
      const sources = [...new Set(cells.flatMap((cell) => cell.row.cpu))].filter((source) => source.role !== 'load generator');
      const windows = await Promise.all(cells.map((cell) => startCpuWindow([...sources.filter((source) => cell.row.cpu.includes(source)), processCpu('load generator', generator.process.pid!)])));
      const paced = (await firstJsonLine(generator, (settings.warmupSeconds + settings.rateDurationSeconds) * 1000 + 30_000)) as unknown as PacedMeasurement[];
      // Per request of all the run's requests: shared processes (upstream, generator) serve them all.
      const requests = rate * (settings.warmupSeconds + settings.rateDurationSeconds);
      const used = await Promise.all(windows.map((window) => window()));
      return paced.map((measured, i) => {
        const own = Object.entries(used[i]!).map(([role, seconds]) => [role, (seconds * 1e6) / (role === 'gateway' || role === 'proxy' ? requests / cells.length : requests)]);
        return { ...measured, cpuMicrosPerRequest: Object.fromEntries(own) as FixedRateRun['cpuMicrosPerRequest'] };
      });
    } finally {
      await generator.stop();
    }
  } finally {
    for (const session of sessions) await session.close();
  }
}

function describeRun(measured: FixedRateRun, rate: number): string {
  const { generator } = measured;
  const cpu = Object.entries(measured.cpuMicrosPerRequest).map(([role, micros]) => `${role} ${Math.round(micros)}`).join(', ');
  const why = describeCauses(measured.errorCauses);
  return (
    `${Math.round(measured.achievedRps)}/${Math.round(rate)} req/s, p99 ${measured.latency.p99.toFixed(2)} ms, errors ${measured.errors}${why ? ` (${why})` : ''}; ` +
    `generator: send lag p99 ${generator.sendLagP99.toFixed(2)} max ${generator.sendLagMax.toFixed(1)} ms, loop delay p99 ${generator.loopDelayP99.toFixed(2)} max ${generator.loopDelayMax.toFixed(1)} ms; CPU µs/req ${cpu}`
  );
}

/** A fresh process started with --trace-gc-nvp, with the GC trace kept out of its warnings. */
interface Traced {
  readonly name: string;
  readonly child: Child;
  readonly origin: string;
  readonly token: string | undefined;
  readonly paths: Partial<Record<Workload['id'], string>>;
}

/**
 * V8 heap bytes allocated per request in the bare proxy and in the gateway (small tools/call;
 * tools/list filtered and unfiltered), each in a fresh process traced with --trace-gc-nvp,
 * after a warm-up of a quarter as many requests.
 */
export async function measureAllocation(stack: Stack, settings: BenchSettings): Promise<AllocationSummary[]> {
  const started: Child[] = [];
  const summaries: AllocationSummary[] = [];
  try {
    const proxy = spawnNode('bare proxy (gc trace)', here('./proxy-process.js'), [stack.upstreamOrigin], GC_TRACE_FLAGS);
    started.push(proxy);
    const proxyOrigin = String((await firstJsonLine(proxy)).origin);
    const gateway = await startGatewayProcess(stack.dir, {
      name: 'gateway-jwt-gc-trace',
      issuer: { kind: 'jwt', issuer: stack.jwt.issuer },
      upstreamOrigin: stack.upstreamOrigin,
      routes: GATEWAY_ROUTES,
      store: { type: 'memory' },
      nodeFlags: GC_TRACE_FLAGS,
    });
    started.push(gateway.child);
    const targets: Traced[] = [
      { name: 'bare http-proxy-3 hop', child: proxy, origin: proxyOrigin, token: undefined, paths: { call: '/mcp', list: '/mcp' } },
      { name: 'gateway, JWT + policy', child: gateway.child, origin: gateway.origin, token: stack.jwt.token, paths: { call: '/mcp', list: '/mcp' } },
      { name: 'gateway, JWT, nothing to filter', child: gateway.child, origin: gateway.origin, token: stack.jwt.token, paths: { list: '/mcp-all' } },
    ];
    for (const target of targets) {
      for (const id of ['call', 'list'] as const) {
        const path = target.paths[id];
        if (path === undefined) continue;
        const requests = id === 'list' ? Math.ceil(settings.allocRequests / 5) : settings.allocRequests;
        const session = await openCellSession({ path, row: { origins: [target.origin], token: target.token } });
        const [endpoint] = session.endpoints;
        const tracer = traceGc(target.child);
        await measure([endpoint!], workload(id).body, 16, { requests: Math.ceil(requests / 4) });
        tracer.start();
        const measured = await measure([endpoint!], workload(id).body, 16, { requests });
        const gc = tracer.stop();
        await session.close();
        const answered = measured.requests;
        summaries.push({
          target: target.name,
          workload: id,
          requests: answered,
          bytesPerRequest: gc.allocatedBytes / answered,
          collectionsPer1000Requests: (gc.collections * 1000) / answered,
          gcPauseMicrosPerRequest: (gc.pauseMs * 1000) / answered,
        });
        log(`  allocation (${target.name}, ${id}): ${(gc.allocatedBytes / answered / 1024).toFixed(1)} KiB/request over ${answered} requests, ${gc.collections} GCs (${gc.scavenges} scavenges), pause ${gc.pauseMs.toFixed(1)} ms`);
      }
    }
  } finally {
    for (const child of started) await child.stop();
  }
  return summaries;
}

/** How many streams one process can relay: two descriptors each (client and upstream side), some kept spare. */
export async function streamsWithinFileLimit(requested: number): Promise<{ count: number; limit: number | undefined }> {
  const limit = await openFileLimit();
  const spare = 200;
  return { count: limit === undefined ? requested : Math.min(requested, Math.floor((limit - spare) / 2)), limit };
}

/** N idle streams through a fresh gateway, then through a fresh bare proxy, for scale. */
export async function measureStreams(stack: Stack, settings: BenchSettings): Promise<IdleStreamsResult[]> {
  const { count, limit } = await streamsWithinFileLimit(settings.streams);
  if (count < settings.streams) {
    log(`idle streams: the open-file limit is ${limit} (ulimit -n), and each stream holds two descriptors in the proxying process: opening ${count} of ${settings.streams}; the figure at ${settings.streams} is projected`);
  }
  const results: IdleStreamsResult[] = [];
  const route: GatewayRoute = { path: '/hold', upstreamPath: '/hold', policy: 'filtering' };
  const gateway = await startGatewayProcess(stack.dir, {
    name: 'gateway-streams',
    issuer: { kind: 'jwt', issuer: stack.jwt.issuer },
    upstreamOrigin: stack.upstreamOrigin,
    routes: [route],
    store: { type: 'memory' },
    // One session per stream, all one user's.
    maxSessionsPerPrincipal: settings.streams + 1,
  });
  try {
    log(`idle streams: opening ${count} through the gateway…`);
    results.push(await measureIdleStreams('gateway, JWT + policy', gateway.child.process.pid!, `${gateway.origin}/hold`, stack.jwt.token, count, settings.streams));
  } finally {
    await gateway.child.stop();
  }
  const proxy = spawnNode('bare proxy (streams)', here('./proxy-process.js'), [stack.upstreamOrigin]);
  try {
    const origin = String((await firstJsonLine(proxy)).origin);
    log(`idle streams: opening ${count} through the bare proxy…`);
    results.push(await measureIdleStreams('bare http-proxy-3 hop', proxy.process.pid!, `${origin}/hold`, undefined, count, settings.streams));
  } finally {
    await proxy.stop();
  }
  for (const r of results) log(`  ${r.target}: ${r.opened} streams open (${r.failed} failed) in ${r.openSeconds.toFixed(1)} s, RSS ${(r.before.rss / 2 ** 20).toFixed(0)} → ${(r.withStreams.rss / 2 ** 20).toFixed(0)} MiB`);
  return results;
}
