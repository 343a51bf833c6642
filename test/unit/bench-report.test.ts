import { describe, expect, it } from 'vitest';
import type { PacedMeasurement } from '../../bench/paced.js';
import { evaluateTargets, formatFixedRate, median, ratiosOf, summarizeFixedRate, summarizeInterleaved, type CellSummary } from '../../bench/report.js';

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
    const targets = evaluateTargets({
      cells: [cell('call', 'b', 1000), cell('call', 'c', 910), cell('list', 'c', 850, 500), cell('list', 'c-all', 1000, 400)],
      fixedRate: [],
      streams: undefined,
      startup: { runs: [400, 500, 450], medianMs: 450 },
    });
    const met = Object.fromEntries(targets.map((t) => [t.name, t.met]));
    expect(met).toEqual({
      'throughput on small tools/call': true,
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
      non2xx: 0,
      generator: { sendLagP99, sendLagMax: loopDelayMax, loopDelayP99: sendLagP99, loopDelayMax },
      cpuMicrosPerRequest: { gateway },
    });
    const [hop, gateway] = summarizeFixedRate([
      { row: 'b', label: 'b', runs: [run(10, 1, 5), run(12, 3, 9), run(11, 2, 7)] },
      { row: 'c', label: 'c', runs: [run(14, 2, 6, 70), run(11.5, 4, 30, 90), run(13, 1, 8, 60)] },
    ]);
    expect(hop!.generator).toEqual({ sendLagP99: 2, loopDelayMax: 7 });
    expect(gateway!.generator).toEqual({ sendLagP99: 2, loopDelayMax: 8 });
    expect(gateway!.median.p99).toBe(13);
    expect(gateway!.cpuMicrosPerRequest).toEqual({ gateway: 70 });
    expect(gateway!.p99AboveProxyMs).toBe(2);
    expect(hop!.p99AboveProxyMs).toBe(0);
  });

  it('meets the p99 target only when the interleaved and the separate runs both pass', () => {
    const run = (p50: number, p99: number): PacedMeasurement => ({
      rate: 50,
      achievedRps: 50,
      requests: 500,
      latency: { p50, p99, p99_9: p99 + 1, max: p99 + 2 },
      errors: 0,
      non2xx: 0,
      generator: { sendLagP99: 1, sendLagMax: 2, loopDelayP99: 1, loopDelayMax: 2 },
    });
    const interleaved = summarizeInterleaved(
      [
        { row: 'b', label: 'hop' },
        { row: 'c', label: 'gateway' },
      ],
      [
        [run(1, 10), run(1.1, 12.5)],
        [run(1, 20), run(1.2, 19)],
        [run(1, 15), run(1.1, 15.5)],
      ],
    );
    expect(interleaved.p99Differences).toEqual([2.5, -1, 0.5]);
    expect(interleaved.median.p99Difference).toBe(0.5);
    expect(interleaved.median.p50Difference).toBeCloseTo(0.1, 10);
    expect(interleaved.ratePerRow).toBe(50);
    const separateRuns = (gatewayP99: number) =>
      summarizeFixedRate([
        { row: 'b', label: 'hop', runs: [run(1, 10)] },
        { row: 'c', label: 'gateway', runs: [run(1, gatewayP99)] },
      ]);
    const judged = (gatewayP99: number | undefined, withInterleaved: boolean) =>
      evaluateTargets({
        cells: [],
        fixedRate: gatewayP99 === undefined ? [] : separateRuns(gatewayP99),
        interleaved: withInterleaved ? interleaved : undefined,
        streams: undefined,
        startup: undefined,
      }).find((t) => t.name === 'p99 at half of saturation')!;
    const interleavedText = 'interleaved +0.50 ms (median of 3 runs, 50 req/s each)';
    expect(judged(13, true)).toEqual(
      expect.objectContaining({ met: false, measured: `${interleavedText}; separate runs +3.00 ms (13.00 vs 10.00 ms at 50 req/s)` }),
    );
    expect(judged(10.9, true)).toEqual(expect.objectContaining({ met: true, measured: `${interleavedText}; separate runs +0.90 ms (10.90 vs 10.00 ms at 50 req/s)` }));
    expect(judged(undefined, true)).toEqual(expect.objectContaining({ met: true, measured: interleavedText }));
    expect(judged(13, false)).toEqual(expect.objectContaining({ met: false, measured: 'separate runs +3.00 ms (13.00 vs 10.00 ms at 50 req/s)' }));
    expect(judged(10.5, false)).toEqual(expect.objectContaining({ met: true }));
    expect(judged(undefined, false)).toEqual(expect.objectContaining({ met: undefined, measured: 'not measured' }));
    // Away from half of saturation the runs are shown but the target is not judged from them.
    const atQuarter = evaluateTargets({ cells: [], fixedRate: separateRuns(10.5), rateFraction: 0.25, interleaved, streams: undefined, startup: undefined }).find(
      (t) => t.name === 'p99 at half of saturation',
    )!;
    expect(atQuarter).toEqual(expect.objectContaining({ met: undefined, measured: 'not measured (fixed rate at 0.25 of saturation)' }));
    expect(formatFixedRate(separateRuns(13), 0.25).split('\n')[0]).toBe("== small tools/call at a fixed 50 req/s (0.25 of row c's saturated req/s), open loop");
    expect(formatFixedRate(separateRuns(13)).split('\n')[0]).toBe("== small tools/call at a fixed 50 req/s (half of row c's saturated req/s), open loop");
  });
});
