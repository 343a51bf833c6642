/**
 * `npm run bench`: the gateway's cost, measured against the same upstream under the same load.
 *
 *   (a) direct to the upstream                    (d) gateway, opaque token, introspection cached
 *   (b) a bare http-proxy-3 hop                    (e) nginx as a reverse proxy, if installed
 *   (c) gateway, JWT + policy (lists filtered)     (f) two gateways sharing Redis (--redis)
 *   (c-all) the same gateway on a route whose policy shows every tool (nothing to filter)
 *   (g) gateway, JWT + policy, the upstream credential from a cached token exchange (small calls)
 *
 * Workloads: a small tools/call (from the SDK upstream, and the same answer from a lean one),
 * tools/list of 200 tools, and a tools/call answered as SSE with progress events. Rows take turns
 * within each round (a b c d …, a b c d …) so drift on the machine spreads over all of them.
 * Then: both small calls at a fixed half-saturation rate, allocation per request, idle SSE
 * streams, startup to ready. Not a test: nothing here passes or
 * fails on numbers; the targets are reported as met or not.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { arch, cpus, platform, totalmem } from 'node:os';
import { dirname } from 'node:path';
import type { Child } from './children.js';
import { Cleanup } from './cleanup.js';
import { startCpuWindow } from './cpu.js';
import { measure } from './load.js';
import { PROGRESS_STEPS, PROTOCOL_VERSION, WORKLOADS } from './mcp.js';
import { openFileLimit } from './memory.js';
import { measureAllocation, measureFixedRate, measureInterleaved, measureStartup, measureStreams } from './phases.js';
import {
  describeRate,
  evaluateTargets,
  FIXED_RATE_WORKLOADS,
  formatAllocation,
  formatCells,
  formatFixedRate,
  formatInterleaved,
  formatStreams,
  formatTargets,
  rateBasisOf,
  summarizeCells,
  summarizeFixedRate,
  summarizeInterleaved,
  type AllocationSummary,
  type CellResult,
  type FixedRateSummary,
  type InterleavedSummary,
  type RunRecord,
  type StartupSummary,
} from './report.js';
import { readSettings, redactedUrl, type BenchSettings } from './settings.js';
import { checkedCells, openCellSession, startStack, type Cell } from './stack.js';
import { HIDDEN_TOOL_COUNT, TOOL_COUNT } from './upstream.js';
import type { IdleStreamsResult } from './idle-streams.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  const settings = readSettings();
  const cleanup = new Cleanup();
  cleanup.exitOnSignals();
  const began = performance.now();
  try {
    printSettings(settings);
    log('starting IdPs, upstream, proxies and gateways…');
    const stack = await startStack(cleanup, settings);
    for (const skipped of stack.skipped) log(`row (${skipped.id}) ${skipped.label}: skipped, ${skipped.reason}`);
    const wantsPhase = (phase: BenchSettings['skip'][number]) => !settings.skip.includes(phase);

    // First, while the machine is otherwise quiet: fresh gateways from spawn to ready.
    const startup: StartupSummary | undefined = wantsPhase('startup') && settings.startupRuns > 0 ? await measureStartup(stack, settings.startupRuns) : undefined;

    const workloads = WORKLOADS.filter((w) => settings.workloads.includes(w.id));
    const cells = await checkedCells(stack.rows, workloads);
    const warnings = countGatewayOutput(cells);
    if (settings.warmupSeconds > 0) {
      // Fresh processes are still compiling and growing their heaps: one unmeasured pass per
      // row and workload first, so run 1 is not the cold one.
      log(`warm-up pass: ${2 * settings.warmupSeconds} s per row and workload, not measured`);
      for (const cell of cells) {
        const session = await openCellSession(cell);
        await measure(session.endpoints, cell.workload.body, settings.connections, { seconds: 2 * settings.warmupSeconds });
        await session.close();
      }
    }
    const runs = new Map<Cell, RunRecord[]>(cells.map((cell) => [cell, []]));
    for (let round = 1; round <= settings.runs; round++) {
      for (const cell of cells) {
        const session = await openCellSession(cell);
        // A short warm-up right before each run: the previous row had the CPU, and idle
        // keep-alive sockets may have timed out meanwhile.
        if (settings.warmupSeconds > 0) await measure(session.endpoints, cell.workload.body, settings.connections, { seconds: settings.warmupSeconds });
        const cpuUsed = await startCpuWindow(cell.row.cpu);
        const measurement = await measure(session.endpoints, cell.workload.body, settings.connections, { seconds: settings.durationSeconds });
        runs.get(cell)!.push({ measurement, cpuSeconds: await cpuUsed() });
        await session.close();
        log(
          `  run ${round}/${settings.runs} ${cell.workload.id} (${cell.row.id}): ${Math.round(measurement.rps)} req/s, ` +
            `p99 ${measurement.latency.p99} ms, errors ${measurement.errors}, non-2xx ${measurement.non2xx}`,
        );
      }
    }
    const cellResults: CellResult[] = cells.map((cell) => ({
      workload: cell.workload.id,
      row: cell.row.id,
      label: cell.row.label,
      runs: runs.get(cell)!,
      gatewayWarnings: warnings.get(cell)!(),
    }));
    const summaries = summarizeCells(cellResults);

    const fixedRate: FixedRateSummary[] = [];
    const interleaved: InterleavedSummary[] = [];
    const fixedRateBlocks: string[] = [];
    for (const workload of wantsPhase('fixed-rate') ? workloads.filter((w) => FIXED_RATE_WORKLOADS.includes(w.id)) : []) {
      const basis = rateBasisOf(summaries, workload.id);
      if (!basis) continue;
      const rate = Math.round(basis.saturatedRps * settings.rateFraction);
      log(`fixed rate: ${workload.label} at ${rate} req/s (${describeRate(settings.rateFraction, basis)}), open loop`);
      const paced = cells.filter((cell) => cell.workload === workload && cell.row.id !== 'f');
      const measured = await measureFixedRate(paced, rate, settings, stack.collectUpstreamGarbage);
      const summary = summarizeFixedRate(workload.id, paced.map((cell) => ({ row: cell.row.id, label: cell.row.label, runs: measured.get(cell.row.id)! })));
      fixedRate.push(...summary);
      fixedRateBlocks.push(formatFixedRate(summary, workload.label, settings.rateFraction, basis));
      const hop = paced.find((cell) => cell.row.id === 'b');
      for (const other of settings.interleavedRuns > 0 ? settings.interleaveWith : []) {
        const against = paced.find((cell) => cell.row.id === other);
        if (!hop || !against) continue;
        log(`interleaved: rows b and ${other} at ${rate} req/s in all, every other request to each`);
        const pairs = await measureInterleaved([hop, against], rate, { ...settings, runs: settings.interleavedRuns }, stack.collectUpstreamGarbage);
        const together = summarizeInterleaved(workload.id, [{ row: 'b', label: hop.row.label }, { row: other, label: against.row.label }], pairs);
        interleaved.push(together);
        fixedRateBlocks.push(formatInterleaved(together));
      }
    }
    let allocation: AllocationSummary[] = [];
    if (wantsPhase('alloc') && settings.allocRequests > 0) {
      log('allocation: fresh bare proxy and gateway under --trace-gc-nvp…');
      allocation = await measureAllocation(stack, settings);
    }
    let streams: IdleStreamsResult[] = [];
    if (wantsPhase('streams') && settings.streams > 0) streams = await measureStreams(stack, settings);

    const targets = evaluateTargets({ cells: summaries, fixedRate, rateFraction: settings.rateFraction, interleaved, streams: streams[0], startup });
    const printed = [
      ...workloads.map((w) => formatCells(w.label, summaries.filter((s) => s.workload === w.id))),
      ...fixedRateBlocks,
      formatAllocation(allocation),
      formatStreams(streams),
      startup ? `== startup to ready (spawn → first 200 from /readyz, local dev IdP): ${startup.runs.map((t) => `${Math.round(t)} ms`).join(', ')}; median ${Math.round(startup.medianMs)} ms` : '',
      ...stack.skipped.map((s) => `row (${s.id}) ${s.label}: skipped, ${s.reason}`),
      formatTargets(targets),
      `Medians of ${settings.runs} run(s) each, every figure separately; errors and non-2xx summed over runs. ÷a, ÷b: this row's figure divided by row (a)'s, (b)'s.`,
      'CPU µs/req: CPU time of the row\'s gateway or proxy (Redis included for f), the upstream and the load generator, per answered request.',
      ...warningLines(cellResults),
    ].filter((block) => block !== '');
    process.stdout.write(`\n${printed.join('\n\n')}\n`);

    const report = {
      generatedAt: new Date().toISOString(),
      durationSeconds: Math.round((performance.now() - began) / 1000),
      settings: { ...settings, redisUrl: redactedUrl(settings.redisUrl) },
      environment: {
        node: process.version,
        platform: platform(),
        arch: arch(),
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        memoryBytes: totalmem(),
        openFileLimit: (await openFileLimit()) ?? null,
      },
      workloads: workloads.map((w) => ({ id: w.id, label: w.label, upstreamPath: w.upstreamPath, body: w.body })),
      setup: {
        upstream: `bench/upstream.ts: @modelcontextprotocol/sdk Server, stateful, ${TOOL_COUNT} tools; /mcp answers JSON, /mcp-sse answers SSE (${PROGRESS_STEPS} progress events, then the result); /mcp-lean answers the small call with the same bytes from a bare node:http handler`,
        protocolVersion: PROTOCOL_VERSION,
        gatewayPolicy: `filtering: small_call needs todo:read and has a rate limit (never refuses); admin_* denied (${HIDDEN_TOOL_COUNT} of ${TOOL_COUNT} tools hidden); "*" needs todo:read. c-all: the same without the deny, so no list is filtered`,
        sessions: 'one MCP session per row and workload, shared by all connections; unique JSON-RPC id per request',
        rowF: 'session opened through replica 1, used through both; connections split evenly; req/s summed; latency histograms merged',
        skippedRows: stack.skipped,
        mainGatewayStartupMs: stack.startupMs,
      },
      method:
        'autocannon, closed loop, fixed connections; a first unmeasured pass of 2 x warm-up per row and workload, then rounds with a warm-up before each run; ' +
        'medians over runs of each figure separately; CPU from /proc/<pid>/stat. Fixed rate (small tools/call from the SDK upstream and from the lean one): open loop at a fraction (settings.rateFraction; half by default) of the lower of rows b\'s and c\'s saturated req/s on that workload, latency from when each request was due; the generator\'s own send lag and event-loop delay are reported beside it. Interleaved: rows b and c in the same runs, every other request to each, at the same total rate. The p99 target (judged only at half of saturation) is met when, on each small-call workload run, both the separate runs\' p99 difference (medians) and the median of the interleaved per-run p99 differences are at most 1 ms. ' +
        'Allocation: sum of --trace-gc-nvp allocated= per request. Idle streams: VmRSS of the proxying process, clients in a separate process.',
      cells: summaries.map((summary, i) => ({ ...summary, runs: cellResults[i]!.runs })),
      fixedRate,
      interleaved,
      allocation,
      idleStreams: streams,
      startup: startup ?? null,
      targets,
    };
    await mkdir(dirname(settings.out), { recursive: true });
    await writeFile(settings.out, `${JSON.stringify(report, null, 2)}\n`);
    log(`\nJSON report: ${settings.out} (whole run ${Math.round((performance.now() - began) / 1000)} s)`);
  } catch (error) {
    log(`bench: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  } finally {
    await cleanup.run();
    if (settings.cpuProfDir) log(`CPU profiles in ${settings.cpuProfDir}: node dist/bench/profile-summary.js ${settings.cpuProfDir}`);
  }
}

function printSettings(settings: BenchSettings): void {
  log(
    [
      'mcp-auth-gateway benchmark',
      `  ${settings.durationSeconds} s per run (fixed rate: ${settings.rateDurationSeconds} s), warm-up ${settings.warmupSeconds} s, ${settings.connections} connections, ${settings.runs} run(s); ` +
        `workloads ${settings.workloads.join(',')}; rows ${settings.rows.join(',')}${settings.skip.length > 0 ? `; skipping ${settings.skip.join(',')}` : ''}`,
      `  Node ${process.version}, ${cpus().length} CPU(s)`,
    ].join('\n'),
  );
}

/** Gateways' output reaches us through their log readers, warn and above only: every line deserves a look. */
const SAMPLE_LINES = 3;
/** The first few lines each gateway logged during the load, to show with the warning count. */
const sampleLines = new Map<string, string[]>();

function countGatewayOutput(cells: readonly Cell[]): Map<Cell, () => number> {
  const perChild = new Map<Child, { count: number }>();
  for (const cell of cells) {
    for (const gateway of cell.row.gateways) {
      if (perChild.has(gateway)) continue;
      const counter = { count: 0 };
      const samples: string[] = [];
      sampleLines.set(gateway.name, samples);
      gateway.onLine((line) => {
        counter.count++;
        if (samples.length < SAMPLE_LINES) samples.push(line.slice(0, 300));
      });
      perChild.set(gateway, counter);
    }
  }
  return new Map(cells.map((cell) => [cell, () => cell.row.gateways.reduce((sum, g) => sum + perChild.get(g)!.count, 0)]));
}

function warningLines(results: readonly CellResult[]): string[] {
  const rows = new Map<string, number>();
  for (const r of results) if (r.gatewayWarnings > 0) rows.set(r.row, r.gatewayWarnings);
  const lines = [...rows].map(([row, count]) => `Warning: the gateways of row (${row}) logged ${count} line(s).`);
  for (const [name, samples] of sampleLines) for (const sample of samples) lines.push(`  ${name}: ${sample}`);
  return lines;
}

await main();
