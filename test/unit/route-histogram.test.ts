import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { RouteHistogram } from '../../src/observability/route-histogram.js';

const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const help = "Time from forwarding a request to the upstream's response headers, by route.";

/** The same observations into a RouteHistogram and into prom-client's own Histogram, each in its own registry. */
function both(observations: readonly (readonly [string, number])[]) {
  const ours = new Registry();
  const theirs = new Registry();
  const histogram = new RouteHistogram({ name: 'latency_seconds', help, buckets, registers: [ours] });
  const reference = new Histogram({ name: 'latency_seconds', help, buckets, labelNames: ['route'] as const, registers: [theirs] });
  for (const [route, value] of observations) {
    histogram.record(route, value);
    reference.observe({ route }, value);
  }
  return { ours, theirs, histogram };
}

const observations: [string, number][] = [
  ['todo', 0.0004],
  ['todo', 0.001], // on a bound: counted in that bucket
  ['todo', 0.0031],
  ['todo', 0.7],
  ['todo', 45], // above every bound: only in +Inf
  ['files', 0.012],
  ['files', 0.012],
  ['odd "route" \\ name', 2.5],
];

describe('RouteHistogram', () => {
  it("writes the same exposition text as prom-client's own histogram", async () => {
    const { ours, theirs } = both(observations);
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('latency_seconds_bucket{le="0.001",route="todo"} 2');
    expect(text).toContain('latency_seconds_bucket{le="+Inf",route="todo"} 5');
    expect(text).toContain('latency_seconds_count{route="files"} 2');
  });

  it('gives the same values as JSON', async () => {
    const { ours, theirs } = both(observations);
    // Name, labels and value of each; prom-client also writes `exemplar: null` on its buckets.
    const sorted = (metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
      metrics.map((metric) => ({
        ...metric,
        values: metric.values
          .map((value) => {
            const { metricName } = value as { metricName?: string };
            return `${metricName} ${JSON.stringify(Object.entries(value.labels).sort())} ${value.value}`;
          })
          .sort(),
      }));
    const [mine] = sorted(await ours.getMetricsAsJSON());
    const [reference] = sorted(await theirs.getMetricsAsJSON());
    expect(mine?.values).toEqual(reference?.values);
    expect(mine?.type).toBe(reference?.type);
    expect(mine?.values.length).toBe(3 * (buckets.length + 3));
  });

  it('is emptied by a registry reset, and ignores a value that is not a finite number', async () => {
    const { ours, histogram } = both([['todo', 0.2]]);
    ours.resetMetrics();
    histogram.record('todo', Number.NaN);
    histogram.record('todo', Number.POSITIVE_INFINITY);
    expect(await ours.metrics()).not.toContain('latency_seconds_count');
    histogram.record('todo', 0.2);
    expect(await ours.metrics()).toContain('latency_seconds_count{route="todo"} 1');
  });
});
