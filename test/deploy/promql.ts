import { parser } from '@prometheus-io/lezer-promql';

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

/**
 * PromQL checks for the monitoring files under deploy/: expressions are parsed with the
 * official grammar (@prometheus-io/lezer-promql, the one Prometheus' own UI uses), and every
 * metric and label they name is looked up in what a running gateway exports.
 */

/** Series names a gateway's /metrics exposes, each with the label names seen on its samples. */
export type ExportedSeries = ReadonlyMap<string, ReadonlySet<string>>;

/**
 * Labels Prometheus attaches to every scraped series (the scrape's own, and those the Prometheus
 * Operator adds from the Service and Pod): they are never in the exposition itself.
 */
export const TARGET_LABELS: ReadonlySet<string> = new Set(['job', 'instance', 'namespace', 'pod', 'service', 'container', 'endpoint']);

/**
 * The series an exposition offers: a histogram `h` is queried as `h_bucket`, `h_sum` and
 * `h_count` (a summary as itself, `_sum` and `_count`). A family with no sample yet is still
 * listed, from its `# TYPE` line, with no labels.
 */
export function exportedSeries(exposition: string): ExportedSeries {
  const series = new Map<string, Set<string>>();
  for (const line of exposition.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      const names = kind === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : kind === 'summary' ? [name, `${name}_sum`, `${name}_count`] : [name];
      for (const n of names) if (!series.has(n)) series.set(n, new Set());
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!sample) throw new Error(`not a sample line: ${line}`);
    const labels = series.get(sample[1]!);
    if (!labels) throw new Error(`sample of a family without # TYPE: ${line}`);
    for (const [, label] of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) labels.add(label!);
  }
  return series;
}

/** A vector selector: its metric name (undefined when it has none) and the labels it matches on. */
export interface Selector {
  readonly metric: string | undefined;
  readonly labels: readonly string[];
}

export interface ParsedPromQL {
  /** Where the grammar found errors (the parser recovers, marking them in the tree). */
  readonly errors: readonly string[];
  readonly selectors: readonly Selector[];
  /** Labels named in `by (…)`, `without (…)`, `on (…)`, `ignoring (…)`, with the selectors they apply to. */
  readonly groupings: readonly { readonly labels: readonly string[]; readonly selectors: readonly Selector[] }[];
}

const unquote = (text: string) => (text.startsWith('"') || text.startsWith("'") ? (JSON.parse(text.startsWith("'") ? `"${text.slice(1, -1)}"` : text) as string) : text);

export function parsePromQL(expr: string): ParsedPromQL {
  const tree = parser.parse(expr);
  const errors: string[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(`syntax error at ${node.from}: …${expr.slice(Math.max(0, node.from - 20), node.from)}⟨here⟩${expr.slice(node.from, node.from + 20)}…`);
    },
  });
  const text = (node: SyntaxNode) => expr.slice(node.from, node.to);
  const selectorsIn = (root: SyntaxNode): Selector[] => {
    const found: Selector[] = [];
    const cursor = root.cursor();
    do {
      if (cursor.name !== 'VectorSelector') continue;
      const node = cursor.node;
      let metric = node.getChild('Identifier') ? text(node.getChild('Identifier')!) : undefined;
      const labels: string[] = [];
      for (const matcher of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) labels.push(text(matcher.getChild('LabelName')!));
      for (const matcher of node.getChild('LabelMatchers')?.getChildren('QuotedLabelMatcher') ?? []) labels.push(unquote(text(matcher.getChild('QuotedLabelName')!)));
      // `{"metric.name"}`: a quoted name on its own is the metric (Prometheus 3's UTF-8 names).
      for (const quoted of node.getChild('LabelMatchers')?.getChildren('QuotedLabelName') ?? []) metric = unquote(text(quoted));
      found.push({ metric, labels });
    } while (cursor.next() && cursor.from < root.to);
    return found;
  };
  const groupings: { labels: string[]; selectors: Selector[] }[] = [];
  tree.iterate({
    enter(ref) {
      if (ref.name !== 'GroupingLabels') return;
      // by/without sit in an AggregateExpr, on/ignoring in a BinaryExpr: the labels must exist
      // on the series that expression reads.
      let scope: SyntaxNode | null = ref.node.parent;
      while (scope && scope.name !== 'AggregateExpr' && scope.name !== 'BinaryExpr') scope = scope.parent;
      const labels = ref.node.getChildren('LabelName').map(text);
      groupings.push({ labels, selectors: scope ? selectorsIn(scope) : [] });
    },
  });
  return { errors, selectors: selectorsIn(tree.topNode), groupings };
}

/**
 * What is wrong with an expression: a parse error, a selector without a literal metric name
 * (it could select anything), a metric the gateway does not export, or a label that neither
 * the metric nor the scrape target has.
 */
export function promqlProblems(expr: string, exported: ExportedSeries): string[] {
  const { errors, selectors, groupings } = parsePromQL(expr);
  const problems = [...errors];
  if (errors.length === 0 && selectors.length === 0) problems.push('names no metric');
  const labelsOf = (selector: Selector) => (selector.metric === undefined ? undefined : exported.get(selector.metric));
  for (const selector of selectors) {
    if (selector.metric === undefined) {
      problems.push('a selector without a metric name (a __name__ matcher could select anything)');
      continue;
    }
    const labels = labelsOf(selector);
    if (!labels) {
      problems.push(`metric ${selector.metric} is not exported by the gateway`);
      continue;
    }
    for (const label of selector.labels) {
      if (!labels.has(label) && !TARGET_LABELS.has(label)) problems.push(`${selector.metric} has no label ${label}`);
    }
  }
  for (const grouping of groupings) {
    const known = new Set([...TARGET_LABELS, ...grouping.selectors.flatMap((s) => [...(labelsOf(s) ?? [])])]);
    for (const label of grouping.labels) if (!known.has(label)) problems.push(`grouping by ${label}, which none of ${grouping.selectors.map((s) => s.metric).join(', ')} has`);
  }
  return problems;
}

/** Grafana's own interval variables, as Grafana would fill them in. */
const GRAFANA_BUILT_INS: Readonly<Record<string, string>> = { __rate_interval: '5m', __interval: '1m', __range: '6h' };

/**
 * A Grafana query with its variables filled in, so it is PromQL: `$__rate_interval` becomes a
 * duration, a dashboard variable a regex that matches anything (they are only meant for label
 * matchers' strings; one used elsewhere is then a syntax error). A variable the dashboard does
 * not define is reported, as Grafana would leave it in the query.
 */
export function interpolateGrafana(expr: string, variables: ReadonlySet<string>): { promql: string; unknown: string[] } {
  const unknown: string[] = [];
  const promql = expr.replace(/\$\{(\w+)(?:[:.][^}]*)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]/g, (match, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    if (name in GRAFANA_BUILT_INS) return GRAFANA_BUILT_INS[name]!;
    if (variables.has(name)) return '.*';
    unknown.push(match);
    return match;
  });
  return { promql, unknown };
}
