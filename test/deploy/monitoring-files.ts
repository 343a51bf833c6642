import { interpolateGrafana, parsePromQL, promqlProblems, TARGET_LABELS, type ExportedSeries } from './promql.js';

/* Loosely typed views of the Grafana dashboard model (schemaVersion 39) this file reads. */
interface DataSourceRef { type?: string; uid?: string }
interface Target { refId?: string; expr?: string; datasource?: DataSourceRef }
export interface Panel {
  id?: number;
  type: string;
  title?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: DataSourceRef;
  targets?: Target[];
  panels?: Panel[];
}
interface Variable { name: string; type: string; query?: string | { query?: string }; datasource?: DataSourceRef; allValue?: string }
export interface Dashboard { schemaVersion: number; uid?: string; title?: string; templating: { list: Variable[] }; panels: Panel[] }

/** Every panel, those inside rows included. */
export const panelsOf = (dashboard: Dashboard): Panel[] => dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);

const variableQuery = (v: Variable) => (typeof v.query === 'string' ? v.query : v.query?.query);

/** Every PromQL query of a dashboard, as Grafana sends it (variables filled in), with where it is. */
export function dashboardQueries(dashboard: Dashboard): { where: string; expr: string; promql: string; unknown: string[] }[] {
  const variables = new Set(dashboard.templating.list.map((v) => v.name));
  const queries: { where: string; expr: string }[] = [];
  for (const panel of panelsOf(dashboard)) {
    for (const target of panel.targets ?? []) queries.push({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr ?? '' });
  }
  for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
    // label_values(selector, label): the selector is PromQL, the label must exist on it.
    const [, selector] = /^label_values\((.*),\s*\w+\)$/.exec(variableQuery(variable) ?? '') ?? [];
    queries.push({ where: `variable ${variable.name}`, expr: selector ?? variableQuery(variable) ?? '' });
  }
  return queries.map((q) => ({ ...q, ...interpolateGrafana(q.expr, variables) }));
}

/**
 * What is wrong with a dashboard: queries that do not parse or name what the gateway does not
 * export, unknown variables, panels not on the `datasource` variable, overlapping ids or
 * panels wider than the grid, and the template variables the dashboard promises.
 */
export function dashboardProblems(dashboard: Dashboard, exported: ExportedSeries): string[] {
  const problems: string[] = [];
  if (!(dashboard.schemaVersion >= 39)) problems.push(`schemaVersion ${dashboard.schemaVersion} < 39`);
  const variables = dashboard.templating.list;
  const datasource = variables.find((v) => v.name === 'datasource');
  if (datasource?.type !== 'datasource' || datasource.query !== 'prometheus') problems.push('no `datasource` variable of Prometheus data sources');
  const route = variables.find((v) => v.name === 'route');
  const routeValues = /^label_values\((.*),\s*(\w+)\)$/.exec(route ? (variableQuery(route) ?? '') : '');
  if (route?.type !== 'query' || routeValues?.[2] !== 'route') problems.push('no `route` variable from label_values(…, route)');
  for (const variable of variables.filter((v) => v.type === 'query')) {
    if (variable.datasource?.uid !== '${datasource}') problems.push(`variable ${variable.name} does not query the $datasource variable`);
    const values = /^label_values\((.*),\s*(\w+)\)$/.exec(variableQuery(variable) ?? '');
    if (!values) {
      problems.push(`variable ${variable.name}: not a label_values(…) query`);
      continue;
    }
    const metric = parsePromQL(interpolateGrafana(values[1]!, new Set(variables.map((v) => v.name))).promql).selectors[0]?.metric;
    const label = values[2]!;
    if (metric && exported.has(metric) && !exported.get(metric)!.has(label) && !TARGET_LABELS.has(label)) problems.push(`variable ${variable.name}: ${metric} has no label ${label}`);
  }
  for (const { where, expr, promql, unknown } of dashboardQueries(dashboard)) {
    if (expr === '') problems.push(`${where}: no query`);
    for (const variable of unknown) problems.push(`${where}: unknown variable ${variable}`);
    for (const problem of promqlProblems(promql, exported)) problems.push(`${where}: ${problem}`);
  }
  const ids = new Set<number>();
  for (const panel of panelsOf(dashboard)) {
    const at = `panel "${panel.title}"`;
    if (panel.id === undefined || ids.has(panel.id)) problems.push(`${at}: missing or repeated id ${panel.id}`);
    else ids.add(panel.id);
    const grid = panel.gridPos;
    if (!grid || grid.x < 0 || grid.w < 1 || grid.x + grid.w > 24 || grid.h < 1) problems.push(`${at}: gridPos outside the 24-column grid`);
    if (panel.type === 'row') continue;
    if (panel.datasource?.uid !== '${datasource}') problems.push(`${at}: not on the $datasource variable`);
    if ((panel.targets ?? []).length === 0) problems.push(`${at}: no query`);
    const refIds = (panel.targets ?? []).map((t) => t.refId);
    if (new Set(refIds).size !== refIds.length) problems.push(`${at}: repeated refId`);
    for (const target of panel.targets ?? []) if (target.datasource?.uid !== '${datasource}') problems.push(`${at} ${target.refId}: not on the $datasource variable`);
  }
  return problems;
}

/* The parts of a PrometheusRule (monitoring.coreos.com/v1) this file reads. */
export interface Rule { alert?: string; record?: string; expr: string | number; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
export interface PrometheusRuleDoc { spec: { groups: { name: string; rules: Rule[] }[] } }

const SEVERITIES = ['info', 'warning', 'critical'];

/**
 * What is wrong with a PrometheusRule's alerts: expressions that do not parse or name what the
 * gateway does not export, and alerts without a `for:` (one bad scrape would page), a severity
 * label, or a summary and a description for whoever is paged.
 */
export function ruleProblems(doc: PrometheusRuleDoc, exported: ExportedSeries): string[] {
  const problems: string[] = [];
  for (const group of doc.spec.groups) {
    for (const rule of group.rules) {
      const at = `${group.name}/${rule.alert ?? rule.record}`;
      for (const problem of promqlProblems(String(rule.expr), exported)) problems.push(`${at}: ${problem}`);
      if (rule.alert === undefined) continue;
      // The CRD's schema checks the duration's form; zero is as good as none.
      if (rule.for === undefined || /^0[a-z]*$/.test(rule.for)) problems.push(`${at}: no for:`);
      if (!SEVERITIES.includes(rule.labels?.severity ?? '')) problems.push(`${at}: severity label not one of ${SEVERITIES.join(', ')}`);
      for (const annotation of ['summary', 'description']) if (!rule.annotations?.[annotation]?.trim()) problems.push(`${at}: no ${annotation} annotation`);
    }
  }
  return problems;
}

export const alertsOf = (doc: PrometheusRuleDoc): Rule[] => doc.spec.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);

/** The metrics an alert's expression reads. */
export const metricsOf = (rule: Rule): string[] => parsePromQL(String(rule.expr)).selectors.flatMap((s) => (s.metric ? [s.metric] : []));
