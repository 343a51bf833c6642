import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startRouteGateway, type RouteGateway } from '../support/route-gateway.js';
import { startBearerProxy, type BearerProxy } from './bearer-proxy.js';
import { startEverythingServer, type EverythingServer } from './everything-server.js';
import {
  describeRegressions,
  failures,
  MINIMUM_NODE_MAJOR,
  regressions,
  RUN_TIMEOUT_MS,
  runServerSuite,
  SCENARIO_TIMEOUT_MS,
  SPEC_VERSIONS,
  type Regression,
  type ScenarioRun,
} from './run-suite.js';

/**
 * The MCP conformance suite (`@modelcontextprotocol/conformance`) run against a real SDK v2
 * server, once directly and once through the gateway (real dev IdP, real token, a policy that
 * allows everything): any check that passes directly and not through the gateway is the
 * gateway changing protocol behaviour, and fails here with what the suite saw.
 *
 * The gateway leg goes through a test-only proxy that adds the bearer token (the suite cannot
 * send extra headers); the gateway allows the proxy's origin, as it would a browser client's.
 */
const SCOPE = 'mcp:conformance';
// Protocol behaviour, not policy: one scope the token holds opens every tool, resource,
// prompt and specification method (none of the scenarios calls a vendor method).
const ALLOW_ALL = `scopes: [${SCOPE}]
tools:
  "*": [${SCOPE}]
`;

const nodeMajor = Number(process.versions.node.split('.')[0]);
const TOO_OLD =
  `the MCP conformance suite needs Node ${String(MINIMUM_NODE_MAJOR)} or later, this is ${process.version}. ` +
  'Install one locally and run the tests under it: npm install --prefix .tools node@22 && PATH="$PWD/.tools/node_modules/.bin:$PATH" npm test';

// The suite imports fs.globSync (Node 22+). Failing, not skipping: a skipped conformance run
// would read as a passing one. (The runs below also refuse to start, so their tests count as
// skipped; this one counts as the failure.)
it(`runs under Node ${String(MINIMUM_NODE_MAJOR)} or later`, () => {
  expect(nodeMajor, TOO_OLD).toBeGreaterThanOrEqual(MINIMUM_NODE_MAJOR);
});

describe('MCP conformance suite: the gateway passes whatever the SDK server passes directly', () => {
  let idp: DevIdp | undefined;
  let server: EverythingServer | undefined;
  let proxy: BearerProxy | undefined;
  let gateway: RouteGateway | undefined;

  beforeAll(async () => {
    if (nodeMajor < MINIMUM_NODE_MAJOR) throw new Error(TOO_OLD);
    idp = await startDevIdp({ scopes: [SCOPE] });
    server = await startEverythingServer();
    proxy = await startBearerProxy();
    gateway = await startRouteGateway({
      issuer: idp.issuer,
      upstreamUrl: server.url,
      head: `allowedOrigins: ["${proxy.origin}"]`,
      policy: ALLOW_ALL,
    });
    const { accessToken } = await obtainAccessToken(idp, { resource: gateway.mcpUrl, scope: SCOPE });
    proxy.route(gateway.gateway.url, accessToken);
  });

  afterAll(async () => {
    await gateway?.close();
    await proxy?.close();
    await server?.close();
    await idp?.close();
  });

  describe.each(SPEC_VERSIONS)('at %s', (version) => {
    let direct: ScenarioRun[];
    let throughGateway: ScenarioRun[];
    // What the gateway logged during this version's run: shown with any regression, so a
    // failure in CI says what the gateway refused or failed at without a rerun.
    let gatewayLines: readonly Record<string, unknown>[] = [];

    // Two runs, each killed after RUN_TIMEOUT_MS: the hook outlasts both, so a run that hangs
    // ends in runServerSuite's report of what it wrote, not in a hook timeout.
    beforeAll(async () => {
      direct = await runServerSuite(server!.url, version);
      const firstLine = gateway!.logs.length;
      throughGateway = await runServerSuite(`${proxy!.origin}/mcp`, version);
      gatewayLines = gateway!.logs.slice(firstLine);
    }, 2 * RUN_TIMEOUT_MS + 20_000);

    // The positive control: were the SDK server to fail a check, that check would drop out of
    // the comparison below unnoticed.
    it('the SDK server passes every check directly', () => {
      expect(direct.length).toBeGreaterThan(0);
      expect(failures(direct).map(({ scenario, check }) => `[${scenario}] ${check.id}: ${check.errorMessage ?? ''}`)).toEqual([]);
    });

    it('every check that passes directly passes through the gateway', () => {
      expect(throughGateway.map((run) => run.scenario)).toEqual(direct.map((run) => run.scenario));
      const found = regressions(direct, throughGateway);
      expect(found.length, `${describeRegressions(version, found)}\n${gatewayLinesAround(gatewayLines, found)}`).toBe(0);
    });
  });
});

// Longer than the suite's per-scenario timeout: a scenario that hung is covered whole.
const SCENARIO_WINDOW_MS = SCENARIO_TIMEOUT_MS + 2_000;

/**
 * What the gateway logged in the seconds before each failing check was recorded (so during the
 * scenario that failed), one short line per entry: which requests it saw, what it answered and
 * how long they took.
 */
function gatewayLinesAround(lines: readonly Record<string, unknown>[], found: readonly Regression[]): string {
  const ends = found.flatMap((r) => (r.timestamp === undefined ? [] : [Date.parse(r.timestamp)]));
  if (ends.length === 0) return '';
  const inWindow = lines.filter((line) => ends.some((end) => Number(line.time) <= end && Number(line.time) >= end - SCENARIO_WINDOW_MS));
  const shown = inWindow.slice(-60).map((line) => {
    const { level, time, event, method, tool, status, upstreamStatus, ms, reason, msg, err } = line;
    return `  ${JSON.stringify({ level, time: new Date(Number(time)).toISOString(), event, method, tool, status, upstreamStatus, ms, reason, msg, err })}`;
  });
  return `What the gateway logged in the ${String(SCENARIO_WINDOW_MS / 1000)} s before each failing check (${String(inWindow.length)} lines, last 60):\n${shown.join('\n')}`;
}
