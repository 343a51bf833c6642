import { describe, expect, it } from 'vitest';
import { evaluateTargets, median, ratiosOf, type CellSummary } from '../../bench/report.js';

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
});
