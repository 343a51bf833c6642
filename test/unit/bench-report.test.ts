import { describe, expect, it } from 'vitest';
import type { PacedMeasurement } from '../../bench/paced.js';
import { evaluateTargets, formatFixedRate, median, rateBasisOf, ratiosOf, summarizeFixedRate, summarizeInterleaved, type CellSummary } from '../../bench/report.js';

const cell = (workload: CellSummary['workload'], row: CellSummary['row'], rps: number, gatewayCpu?: number): CellSummary => ({
  workload,
  row,
  label: row,
  median: { rps, p50: 1, p99: 2, p99_9: 3 },
  totals: { requests: 1, errors: 0, timeouts: 0, non2xx: 0 },
  ratios: { vsDirect: ratiosOf({ rps, p50: 1, p99: 2, p99_9: 3 }, undefined), vsProxy: ratiosOf({ rps, p50: 1, p99: 2, p99_9: 3 }, undefined) },
  cpuMicrosPerRequest: gatewayCpu === undefined ? {} : { gateway: gatewayCpu },
  gatewayWarnings: 0,
});

const paced = (p50: number, p99: number): PacedMeasurement => ({
  rate: 50,
  achievedRps: 50,
  requests: 500,
  latency: { p50, p99, p99_9: p99 + 1, max: p99 + 2 },
  errors: 0,
  errorCauses: {},
  non2xx: 0,
  generator: { sendLagP99: 1, sendLagMax: 2, loopDelayP99: 1, loopDelayMax: 2 },
});

/** Rows b and c interleaved: per run, the hop's p99 and the gateway's. */
const interleavedOn = (workload: CellSummary['workload'], pairs: readonly (readonly [number, number])[]) =>
  summarizeInterleaved(
    workload,
    [
      { row: 'b', label: 'hop' },
      { row: 'c', label: 'gateway' },
    ],
    pairs.map(([hop, gateway]) => [paced(1, hop), paced(1.1, gateway)] as const),
  );

/** Separate fixed-rate runs of rows b and c: per run, the hop's p99 and the gateway's. */
const separateOn = (workload: CellSummary['workload'], pairs: readonly (readonly [number, number])[]) =>
  summarizeFixedRate(workload, [
    { row: 'b', label: 'hop', runs: pairs.map(([hop]) => paced(1, hop)) },
    { row: 'c', label: 'gateway', runs: pairs.map(([, gateway]) => paced(1, gateway)) },
  ]);

/** The benchmark's report arithmetic (the benchmark itself is not a test and never runs here). */
describe('bench report arithmetic', () => {
  it('takes the median of the runs, ignoring runs that measured nothing', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5, Number.NaN, 1])).toBe(3);
    expect(median([])).toBeNaN();
  });

  it('divides every figure by the same figure of the reference row, and gives NaN without one', () => {
    const of = { rps: 900, p50: 2, p99: 6, p99_9: 9 };
    expect(ratiosOf(of, { rps: 1000, p50: 1, p99: 4, p99_9: 9 })).toEqual({ rps: 0.9, p50: 2, p99: 1.5, p99_9: 1 });
    expect(ratiosOf(of, undefined).rps).toBeNaN();
  });

  it('judges the throughput and filtering targets from the medians, and leaves unmeasured ones open', () => {
    const targets = evaluateTargets({
      cells: [cell('call', 'b', 1000), cell('call', 'c', 910), cell('list', 'c', 850, 500), cell('list', 'c-all', 1000, 400)],
      fixedRate: [],
      streams: undefined,
      startup: { runs: [400, 500, 450], medianMs: 450 },
    });
    const met = Object.fromEntries(targets.map((t) => [t.name, t.met]));
    expect(met).toEqual({
      'throughput on small tools/call': true,
      'the same, log level warn': undefined,
      'p99 at half of saturation': undefined,
      'tools/list filtering of 200 tools': false,
      '10,000 idle SSE streams': undefined,
      'startup to ready': true,
    });
    expect(targets.find((t) => t.name === 'tools/list filtering of 200 tools')?.measured).toContain('15.0% fewer req/s; gateway CPU per request +25%');
  });

  it('gives each fixed-rate row its medians, the load generator\'s own lag among them, and p99 above the bare hop', () => {
    const run = (p99: number, sendLagP99: number, loopDelayMax: number, gateway = 50): PacedMeasurement & { cpuMicrosPerRequest: { gateway: number } } => ({
      rate: 100,
      achievedRps: 100,
      requests: 1000,
      latency: { p50: 1, p99, p99_9: p99 + 1, max: p99 + 2 },
      errors: 0,
      errorCauses: {},
      non2xx: 0,
      generator: { sendLagP99, sendLagMax: loopDelayMax, loopDelayP99: sendLagP99, loopDelayMax },
      cpuMicrosPerRequest: { gateway },
    });
    const [hop, gateway] = summarizeFixedRate('call', [
      { row: 'b', label: 'b', runs: [run(10, 1, 5), run(12, 3, 9), run(11, 2, 7)] },
      { row: 'c', label: 'c', runs: [run(14, 2, 6, 70), run(11.5, 4, 30, 90), run(13, 1, 8, 60)] },
    ]);
    expect(hop!.generator).toEqual({ sendLagP99: 2, loopDelayMax: 7 });
    expect(gateway!.generator).toEqual({ sendLagP99: 2, loopDelayMax: 8 });
    expect(gateway!.median.p99).toBe(13);
    expect(gateway!.cpuMicrosPerRequest).toEqual({ gateway: 70 });
    expect(gateway!.p99AboveProxyMs).toBe(2);
    expect(hop!.p99AboveProxyMs).toBe(0);
    // Run i of each row is a pair (rows take turns within a round).
    expect(gateway!.p99s).toEqual([14, 11.5, 13]);
    expect(gateway!.p99AboveProxyByRun).toEqual([4, -0.5, 2]);
    expect(gateway!.workload).toBe('call');
  });

  it('takes the fixed rate from the lower of the hop\'s and the gateway\'s saturation, or the gateway\'s alone', () => {
    expect(rateBasisOf([cell('call', 'b', 4000), cell('call', 'c', 5000)], 'call')).toEqual({ row: 'b', saturatedRps: 4000 });
    expect(rateBasisOf([cell('call', 'b', 6000), cell('call', 'c', 5000)], 'call')).toEqual({ row: 'c', saturatedRps: 5000 });
    expect(rateBasisOf([cell('call', 'c', 5000), cell('call-lean', 'b', 100)], 'call')).toEqual({ row: 'c', saturatedRps: 5000 });
    expect(rateBasisOf([cell('call', 'b', 4000)], 'call')).toBeUndefined();
    const rows = separateOn('call-lean', [[10, 13]]);
    expect(formatFixedRate(rows, 'lean call', 0.5, { row: 'b', saturatedRps: 4321 }).split('\n')[0]).toBe(
      "== lean call at a fixed 50 req/s (half of row b's 4,321 saturated req/s, the lower of rows b and c), open loop",
    );
    expect(formatFixedRate(rows, 'lean call', 0.25, { row: 'c', saturatedRps: 200 }).split('\n')[0]).toBe("== lean call at a fixed 50 req/s (0.25 of row c's 200 saturated req/s), open loop");
  });

  it('judges both throughputs where both small calls ran', () => {
    const throughput = (cells: CellSummary[]) => evaluateTargets({ cells, fixedRate: [], streams: undefined, startup: undefined }).find((t) => t.name === 'throughput on small tools/call')!;
    const sdk = [cell('call', 'b', 1000), cell('call', 'c', 950)];
    expect(throughput(sdk)).toEqual(expect.objectContaining({ met: true, measured: 'SDK upstream 0.95 x (950 vs 1000 req/s)' }));
    expect(throughput([...sdk, cell('call-lean', 'b', 10_000), cell('call-lean', 'c', 8_000)])).toEqual(
      expect.objectContaining({ met: false, measured: 'SDK upstream 0.95 x (950 vs 1000 req/s); lean upstream 0.80 x (8000 vs 10000 req/s)' }),
    );
    expect(throughput([])).toEqual(expect.objectContaining({ met: undefined, measured: 'not measured' }));
  });

  it('holds the gateway at log level warn (c-quiet) to 1.0 x the hop, and row c (info) to 0.9 x', () => {
    const judged = (cells: CellSummary[]) => Object.fromEntries(evaluateTargets({ cells, fixedRate: [], streams: undefined, startup: undefined }).map((t) => [t.name, t]));
    const targets = judged([cell('call', 'b', 1000), cell('call', 'c', 920), cell('call', 'c-quiet', 990)]);
    expect(targets['throughput on small tools/call']).toEqual(expect.objectContaining({ met: true, measured: 'SDK upstream 0.92 x (920 vs 1000 req/s)' }));
    expect(targets['the same, log level warn']).toEqual(expect.objectContaining({ met: false, measured: 'SDK upstream 0.99 x (990 vs 1000 req/s)' }));
    expect(judged([cell('call', 'b', 1000), cell('call', 'c-quiet', 1000)])['the same, log level warn']?.met).toBe(true);
  });

  it('without the lean upstream, meets the p99 target only when the SDK upstream\'s interleaved and separate runs both pass', () => {
    const interleaved = interleavedOn('call', [
      [10, 12.5],
      [20, 19],
      [15, 15.5],
    ]);
    expect(interleaved.p99Differences).toEqual([2.5, -1, 0.5]);
    expect(interleaved.median.p99Difference).toBe(0.5);
    expect(interleaved.median.p50Difference).toBeCloseTo(0.1, 10);
    expect(interleaved.ratePerRow).toBe(50);
    const judged = (gatewayP99: number | undefined, withInterleaved: boolean) =>
      evaluateTargets({
        cells: [],
        fixedRate: gatewayP99 === undefined ? [] : separateOn('call', [[10, gatewayP99]]),
        interleaved: withInterleaved ? [interleaved] : [],
        streams: undefined,
        startup: undefined,
      }).find((t) => t.name === 'p99 at half of saturation')!;
    const interleavedText = 'SDK upstream: interleaved +0.50 ms (median of 3 runs, 50 req/s each)';
    expect(judged(13, true)).toEqual(expect.objectContaining({ met: false, measured: `${interleavedText}; separate runs +3.00 ms (13.00 vs 10.00 ms at 50 req/s)` }));
    expect(judged(10.9, true)).toEqual(expect.objectContaining({ met: true, measured: `${interleavedText}; separate runs +0.90 ms (10.90 vs 10.00 ms at 50 req/s)` }));
    expect(judged(undefined, true)).toEqual(expect.objectContaining({ met: true, measured: interleavedText }));
    expect(judged(13, false)).toEqual(expect.objectContaining({ met: false, measured: 'SDK upstream: separate runs +3.00 ms (13.00 vs 10.00 ms at 50 req/s)' }));
    expect(judged(10.5, false)).toEqual(expect.objectContaining({ met: true }));
    expect(judged(undefined, false)).toEqual(expect.objectContaining({ met: undefined, measured: 'not measured' }));
    // Away from half of saturation the runs are shown but the target is not judged from them.
    const atQuarter = evaluateTargets({ cells: [], fixedRate: separateOn('call', [[10, 10.5]]), rateFraction: 0.25, interleaved: [interleaved], streams: undefined, startup: undefined }).find(
      (t) => t.name === 'p99 at half of saturation',
    )!;
    expect(atQuarter).toEqual(expect.objectContaining({ met: undefined, measured: 'not measured (fixed rate at 0.25 of saturation)' }));
  });

  it('with the lean upstream as well, meets the p99 target only when all four measurements pass', () => {
    const p99 = (measurements: { leanSeparate?: number; leanTogether?: number; sdkSeparate?: number; sdkTogether?: number }) => {
      const { leanSeparate, leanTogether, sdkSeparate, sdkTogether } = measurements;
      return evaluateTargets({
        cells: [],
        fixedRate: [
          ...(leanSeparate === undefined ? [] : separateOn('call-lean', [[20, 20 + leanSeparate]])),
          ...(sdkSeparate === undefined ? [] : separateOn('call', [[25, 29 + sdkSeparate], [28, 28 + sdkSeparate], [30, 24 + sdkSeparate]])),
        ],
        interleaved: [
          ...(leanTogether === undefined ? [] : [interleavedOn('call-lean', [[10, 10 + leanTogether]])]),
          ...(sdkTogether === undefined ? [] : [interleavedOn('call', [[10, 10 + sdkTogether]])]),
        ],
        streams: undefined,
        startup: undefined,
      }).find((t) => t.name === 'p99 at half of saturation')!;
    };
    const passing = p99({ leanSeparate: -8, leanTogether: -2, sdkSeparate: 0.5, sdkTogether: 0.5 });
    expect(passing.met).toBe(true);
    // The separate runs show their run-by-run spread (pairs +4.50, +0.50, -5.50) beside the medians' difference.
    expect(passing.measured).toBe(
      'SDK upstream: interleaved +0.50 ms (median of 1 runs, 50 req/s each); separate runs +0.50 ms (28.50 vs 28.00 ms at 50 req/s, pairs -5.50 ms to +4.50 ms); ' +
        'lean upstream: interleaved -2.00 ms (median of 1 runs, 50 req/s each); separate runs -8.00 ms (12.00 vs 20.00 ms at 50 req/s)',
    );
    expect(p99({ leanSeparate: -8, leanTogether: -2, sdkSeparate: 1.2, sdkTogether: 0.5 }).met).toBe(false);
    expect(p99({ leanSeparate: 1.5, leanTogether: -2, sdkSeparate: 0, sdkTogether: 0.5 }).met).toBe(false);
    expect(p99({ leanSeparate: -8, leanTogether: 1.2, sdkSeparate: 0, sdkTogether: 0.5 }).met).toBe(false);
    expect(p99({ leanSeparate: -8, leanTogether: -2, sdkSeparate: 0, sdkTogether: 1.5 }).met).toBe(false);
    // What was not run is not judged.
    expect(p99({ leanSeparate: -8, leanTogether: -2 }).met).toBe(true);
    expect(p99({ leanTogether: 3 }).met).toBe(false);
  });
});
