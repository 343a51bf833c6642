import { Histogram, type HistogramConfiguration, type MetricObjectWithValues, type MetricType, type MetricValueWithName } from 'prom-client';

interface RouteCounts {
  /** Observations per bucket (not cumulative); the last bound's overflow is only in `count`. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

type Exported = MetricObjectWithValues<MetricValueWithName<'route'>>;

/**
 * A prom-client histogram with one label, `route`, counted in plain arrays and handed to
 * prom-client only when Prometheus scrapes. Every forwarded request observes once, and
 * prom-client's own observe() validates and hashes the label set on every call; here a call is
 * a map look-up and a short scan of the bounds. The exposition is the same text prom-client
 * writes for its own histogram (test/unit/route-histogram.test.ts compares the two).
 */
export class RouteHistogram extends Histogram<'route'> {
  private readonly metricName: string;
  private readonly metricHelp: string;
  private readonly bounds: readonly number[];
  private readonly routes = new Map<string, RouteCounts>();

  constructor(configuration: HistogramConfiguration<'route'> & { readonly buckets: readonly number[] }) {
    super({ ...configuration, buckets: [...configuration.buckets], labelNames: ['route'] });
    this.metricName = configuration.name;
    this.metricHelp = configuration.help;
    this.bounds = [...configuration.buckets].sort((a, b) => a - b);
  }

  record(route: string, value: number): void {
    if (!Number.isFinite(value)) return;
    let counts = this.routes.get(route);
    if (counts === undefined) this.routes.set(route, (counts = { buckets: new Float64Array(this.bounds.length), sum: 0, count: 0 }));
    const { bounds } = this;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]!) bucket++;
    if (bucket < bounds.length) counts.buckets[bucket]!++;
    counts.sum += value;
    counts.count++;
  }

  override async get(): Promise<Exported> {
    return this.exported();
  }

  /**
   * The reader prom-client's registry prefers when a metric has one (registry.js). It gets the
   * same values as get(): labels in the order prom-client writes them for a histogram (`le`,
   * then the metric's own), so the text is the same either way.
   */
  getForPromString(): Exported {
    return this.exported();
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls reset() before this class's fields exist.
    (this.routes as Map<string, RouteCounts> | undefined)?.clear();
  }

  private exported(): Exported {
    const values: MetricValueWithName<'route'>[] = [];
    const name = this.metricName;
    const bucketName = `${name}_bucket`;
    for (const [route, counts] of this.routes) {
      let cumulative = 0;
      this.bounds.forEach((bound, index) => {
        cumulative += counts.buckets[index]!;
        values.push({ metricName: bucketName, labels: withLe(bound, route), value: cumulative });
      });
      values.push({ metricName: bucketName, labels: withLe('+Inf', route), value: counts.count });
      values.push({ metricName: `${name}_sum`, labels: { route }, value: counts.sum });
      values.push({ metricName: `${name}_count`, labels: { route }, value: counts.count });
    }
    return { name, help: this.metricHelp, type: HISTOGRAM, aggregator: 'sum', collect: nothingToCollect, values };
  }
}

/** What prom-client writes after `# TYPE`; its typings declare a numeric enum it never uses. */
const HISTOGRAM = 'histogram' as unknown as MetricType;

/** Counts are kept current as they come: there is nothing to gather at scrape time. */
function nothingToCollect(): void {}

/** A bucket's labels; `le` is no label of the metric's own, so the type cannot name it. */
function withLe(le: number | string, route: string): MetricValueWithName<'route'>['labels'] {
  return { le, route } as MetricValueWithName<'route'>['labels'];
}
