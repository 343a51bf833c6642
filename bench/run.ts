/**
 * `npm run bench`: the gateway's cost, measured against the same upstream under the same load.
 *
 *   (a) direct to the upstream          (c) one gateway, memory store
 *   (b) a bare http-proxy-3 hop         (d) two gateways sharing Redis, load split evenly
 *
 * Every request is the same small MCP tools/call inside an open session. Scenarios take turns
 * within each round (a b c d, a b c d, …) so drift on the machine spreads over all of them
 * instead of favouring whichever ran first. Not a test: nothing here passes or fails on numbers.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, platform, arch } from 'node:os';
import { dirname } from 'node:path';
import { Cleanup } from './cleanup.js';
import { startCpuWindow } from './cpu.js';
import { measure } from './load.js';
import { TOOL_CALL_BODY, TOOL_NAME, PROTOCOL_VERSION } from './mcp.js';
import { BenchRedis } from './redis.js';
import { formatReport, summarize, type RunRecord } from './report.js';
import { readSettings, redactedUrl, type BenchSettings } from './settings.js';
import { startStack, type Scenario } from './stack.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  const settings = readSettings();
  const cleanup = new Cleanup();
  cleanup.exitOnSignals();
  try {
    printSettings(settings);
    const redis = await BenchRedis.connect(settings.redisUrl);
    cleanup.defer('Redis connection', () => redis.close());

    log('starting IdP, upstream, bare proxy and three gateway processes…');
    const scenarios = await startStack(cleanup, redis, settings.redisUrl);
    const warnings = countGatewayOutput(scenarios);

    if (settings.warmupSeconds > 0) {
      // Fresh processes are still compiling and growing their heaps for several seconds: one
      // unmeasured pass per scenario first, so run 1 is not the cold one.
      log(`warm-up pass: ${settings.durationSeconds} s per scenario, not measured`);
      for (const scenario of scenarios) await measure(scenario.endpoints, settings.connections, settings.durationSeconds);
    }
    const runs = new Map<Scenario, RunRecord[]>(scenarios.map((s) => [s, []]));
    for (let round = 1; round <= settings.runs; round++) {
      for (const scenario of scenarios) {
        // A short warm-up right before each run: the previous scenario had the CPU, and idle
        // keep-alive sockets to the upstream may have timed out meanwhile.
        if (settings.warmupSeconds > 0) await measure(scenario.endpoints, settings.connections, settings.warmupSeconds);
        const cpuUsed = await startCpuWindow(scenario.cpu);
        const measurement = await measure(scenario.endpoints, settings.connections, settings.durationSeconds);
        runs.get(scenario)!.push({ measurement, cpuSeconds: await cpuUsed() });
        log(
          `  run ${round}/${settings.runs} (${scenario.id}) ${scenario.label}: ${Math.round(measurement.rps)} req/s, ` +
            `p99 ${measurement.latency.p99} ms, errors ${measurement.errors}, non-2xx ${measurement.non2xx}`,
        );
      }
    }

    const results = scenarios.map((s) => ({
      id: s.id,
      label: s.label,
      endpoints: s.endpoints.map((e) => e.url),
      runs: runs.get(s)!,
      gatewayWarnings: warnings.get(s)!(),
    }));
    const { scenarios: summaries, headline } = summarize(results);
    process.stdout.write(`\n${formatReport(summaries, headline, settings.runs)}\n`);

    const report = {
      generatedAt: new Date().toISOString(),
      settings: { ...settings, redisUrl: redactedUrl(settings.redisUrl) },
      environment: { node: process.version, platform: platform(), arch: arch(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown' },
      workload: {
        request: `POST tools/call ${TOOL_NAME}, one MCP session per scenario shared by all connections, unique JSON-RPC id per request`,
        body: TOOL_CALL_BODY,
        protocolVersion: PROTOCOL_VERSION,
        upstream: 'dev/upstream.ts sample server (@modelcontextprotocol/sdk), stateful, JSON responses, own process',
        gatewayPolicy: `${TOOL_NAME} needs todo:read and has rateLimit { requests: 1000000, per: 1m } (never refuses; every call pays the limiter)`,
        twoReplicas: 'session opened through replica 1, used through both; connections split evenly; req/s summed; latency histograms merged',
      },
      method:
        'one unmeasured pass per scenario, then rounds a b c d with a short warm-up before each run; medians over runs of each figure ' +
        'separately; errors, timeouts and non-2xx summed over runs; CPU from /proc/<pid>/stat and Redis INFO cpu',
      headline,
      // summarize keeps the order of `results`.
      scenarios: summaries.map((summary, i) => ({ ...summary, endpoints: results[i]!.endpoints, runs: results[i]!.runs })),
    };
    await mkdir(dirname(settings.out), { recursive: true });
    await writeFile(settings.out, `${JSON.stringify(report, null, 2)}\n`);
    log(`\nJSON report: ${settings.out}`);
  } catch (error) {
    log(`bench: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  } finally {
    await cleanup.run();
  }
}

function printSettings(settings: BenchSettings): void {
  log(
    [
      'mcp-auth-gateway benchmark',
      `  duration ${settings.durationSeconds} s per run, warm-up ${settings.warmupSeconds} s, ${settings.connections} connections, ${settings.runs} run(s) per scenario`,
      `  Redis ${redactedUrl(settings.redisUrl)}, Node ${process.version}, ${cpus().length} CPU(s)`,
    ].join('\n'),
  );
}

/** Gateways log at warn, so every line they print (stdout or stderr) during the benchmark deserves a look. */
function countGatewayOutput(scenarios: readonly Scenario[]): Map<Scenario, () => number> {
  return new Map(
    scenarios.map((scenario) => {
      let count = 0;
      for (const gateway of scenario.gateways) gateway.onLine(() => count++);
      return [scenario, () => count];
    }),
  );
}

await main();
