/**
 * Runs the MCP conformance suite's server scenarios (`@modelcontextprotocol/conformance`, the
 * `conformance server` command) against one URL and reads back its per-scenario checks.json,
 * and compares two such runs.
 *
 * The suite needs Node 22 or later (it imports `fs.globSync`); it runs under the same Node
 * binary as the test (process.execPath).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type CheckStatus = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO';

/** One check as the suite writes it to checks.json (the fields read here). */
export interface Check {
  readonly id: string;
  readonly description: string;
  readonly status: CheckStatus;
  readonly errorMessage?: string;
  readonly details?: Record<string, unknown>;
  /** ISO time the suite recorded the check at. */
  readonly timestamp?: string;
}

export interface ScenarioRun {
  readonly scenario: string;
  readonly checks: readonly Check[];
}

/** The wire versions the suite can run its server scenarios at; each selects its own set. */
export const SPEC_VERSIONS = ['2025-03-26', '2025-06-18', '2025-11-25', '2026-07-28'] as const;
export type SpecVersion = (typeof SPEC_VERSIONS)[number];

export const MINIMUM_NODE_MAJOR = 22;

const CLI = createRequire(import.meta.url).resolve('@modelcontextprotocol/conformance/dist/index.js');
/**
 * The suite's deadline for each scenario. A scenario answers in well under a second; the
 * deadline only ends one that hangs, so it is generous for a loaded machine.
 */
export const SCENARIO_TIMEOUT_MS = 30_000;
/** How long one whole run (every scenario at one spec version) may take before it is killed. */
export const RUN_TIMEOUT_MS = 200_000;
// Result directories are `server-<scenario>-<ISO timestamp with : and . as ->`.
const RESULT_DIR = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

function runCli(args: readonly string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/**
 * Every server scenario that applies at `specVersion` (`--suite all`: active, pending and
 * draft; extension scenarios such as tasks are never selected by a spec version), run against
 * `url`. The suite exits 1 when a check fails, so its exit code is not an error here; a run
 * that wrote no results is.
 */
export async function runServerSuite(url: string, specVersion: SpecVersion, timeoutMs = RUN_TIMEOUT_MS): Promise<ScenarioRun[]> {
  const outDir = await mkdtemp(join(tmpdir(), 'mcp-conformance-'));
  try {
    const { code, output } = await runCli(
      ['server', '--url', url, '--suite', 'all', '--spec-version', specVersion, '--timeout', String(SCENARIO_TIMEOUT_MS), '--output-dir', outDir],
      timeoutMs,
    );
    const runs: ScenarioRun[] = [];
    for (const entry of (await readdir(outDir)).sort()) {
      const scenario = RESULT_DIR.exec(entry)?.[1];
      if (scenario === undefined) continue;
      const checks = JSON.parse(await readFile(join(outDir, entry, 'checks.json'), 'utf8')) as Check[];
      runs.push({ scenario, checks });
    }
    if (runs.length === 0) throw new Error(`conformance server --spec-version ${specVersion} wrote no results (exit ${String(code)}):\n${output}`);
    return runs;
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

/** A check that passed directly and did not through the gateway, with what the suite saw. */
export interface Regression {
  readonly scenario: string;
  readonly check: string;
  readonly description: string;
  /** What the check became through the gateway ('MISSING' if the scenario never reached it). */
  readonly status: CheckStatus | 'MISSING';
  readonly errorMessage?: string;
  readonly details?: Record<string, unknown>;
  /** When the gateway run recorded it (absent for a MISSING check). */
  readonly timestamp?: string;
}

/**
 * Every check that passed directly but not through the gateway. A check id can occur several
 * times in one scenario (one per probe); the nth occurrence is compared with the nth. A
 * FAILURE through the gateway under an id that never ran directly counts too (some checks are
 * only emitted when something goes wrong, e.g. a wrong JSON-RPC id on an error).
 */
export function regressions(direct: readonly ScenarioRun[], gateway: readonly ScenarioRun[]): Regression[] {
  const found: Regression[] = [];
  const viaGateway = new Map(gateway.map((run) => [run.scenario, run.checks]));
  for (const { scenario, checks } of direct) {
    const through = viaGateway.get(scenario) ?? [];
    const seen = new Map<string, number>();
    for (const check of checks) {
      const n = seen.get(check.id) ?? 0;
      seen.set(check.id, n + 1);
      if (check.status !== 'SUCCESS') continue;
      const counterpart = through.filter((c) => c.id === check.id)[n];
      if (counterpart?.status === 'SUCCESS') continue;
      found.push({
        scenario,
        check: check.id,
        description: check.description,
        status: counterpart?.status ?? 'MISSING',
        ...(counterpart?.errorMessage !== undefined ? { errorMessage: counterpart.errorMessage } : {}),
        ...(counterpart?.details !== undefined ? { details: counterpart.details } : {}),
        ...(counterpart?.timestamp !== undefined ? { timestamp: counterpart.timestamp } : {}),
      });
    }
    const directIds = new Set(checks.map((c) => c.id));
    for (const extra of through.filter((c) => c.status === 'FAILURE' && !directIds.has(c.id))) {
      found.push({ scenario, check: extra.id, description: extra.description, status: extra.status, errorMessage: extra.errorMessage, details: extra.details, timestamp: extra.timestamp });
    }
  }
  return found;
}

/** The checks of a run that did not pass (SKIPPED and INFO are not verdicts). */
export function failures(runs: readonly ScenarioRun[]): { scenario: string; check: Check }[] {
  return runs.flatMap(({ scenario, checks }) => checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING').map((check) => ({ scenario, check })));
}

export function describeRegressions(version: SpecVersion, found: readonly Regression[]): string {
  const lines = found.map((r) => {
    const details = r.details === undefined ? '' : `\n      details: ${JSON.stringify(r.details)}`;
    return `  - [${r.scenario}] ${r.check} (${r.status}): ${r.description}\n      ${r.errorMessage ?? '(no message)'}${details}`;
  });
  return `${String(found.length)} check(s) at ${version} pass against the SDK server directly but not through the gateway:\n${lines.join('\n')}`;
}
