import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { obtainAccessToken } from '../../dev/idp.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { scrapeText } from '../support/scrape.js';
import { startStack, type Stack } from '../support/stack.js';
import { deployYamlFiles, parseYamlDocuments, type YamlDocument } from './deploy-files.js';
import { schemaProblem, unknownFieldProblems } from './kubernetes-schema.js';
import { alertsOf, dashboardProblems, dashboardQueries, metricsOf, panelsOf, ruleProblems, type Dashboard, type PrometheusRuleDoc } from './monitoring-files.js';
import { exportedSeries, parsePromQL, type ExportedSeries } from './promql.js';

/**
 * The Grafana dashboard (deploy/observability) and the Prometheus Operator manifests
 * (deploy/kubernetes/monitoring): every query parses with Prometheus' own PromQL grammar and
 * names only metrics and labels that a real gateway, started here and given some traffic,
 * exports on /metrics; the rules and the ServiceMonitor validate against the operator's CRD
 * schemas and point at what the ingress example really serves. Each check is also run on a
 * broken copy, so it cannot pass by not looking.
 */
const DASHBOARD_FILE = 'deploy/observability/grafana-dashboard.json';
const MONITORING_DIR = 'deploy/kubernetes/monitoring';
const INGRESS_DIR = 'deploy/kubernetes/ingress';

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
const monitoring = deployYamlFiles(MONITORING_DIR).flatMap((file) => parseYamlDocuments(file, '1.1'));
const ingress = deployYamlFiles(INGRESS_DIR).flatMap((file) => parseYamlDocuments(file, '1.1'));
const kindOf = (doc: YamlDocument) => String(doc.object.kind);
const the = (docs: YamlDocument[], kind: string) => {
  const found = docs.filter((d) => kindOf(d) === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!.object;
};
const rule = the(monitoring, 'PrometheusRule') as unknown as PrometheusRuleDoc;

describe('monitoring files', () => {
  let stack: Stack;
  let exported: ExportedSeries;

  // A real gateway's /metrics, after the traffic that makes its labelled series appear: a call
  // with its decision and upstream latency, a refused token, an SSE stream, an upstream failure.
  beforeAll(async () => {
    stack = await startStack({ responseMode: 'json', extraConfig: 'admin: { listen: { host: 127.0.0.1, port: 0 } }' });
    const token = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read', subject: 'olga' })).accessToken;
    const sessionId = await openSession(stack.mcpUrl, token);
    const call = await mcpRequest(stack.mcpUrl, toolCall(1, 'list_todos'), { token, sessionId });
    expect(call.status).toBe(200);
    await call.text();
    expect((await fetch(stack.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(401);
    const stream = new AbortController();
    expect((await mcpRequest(stack.mcpUrl, undefined, { token, sessionId, method: 'GET', signal: stream.signal })).status).toBe(200);
    stream.abort();
    await stack.upstream.close();
    const failed = await mcpRequest(stack.mcpUrl, toolCall(2, 'list_todos'), { token, sessionId });
    expect(failed.status).toBe(502);
    await failed.text();
    exported = exportedSeries(await scrapeText(stack.gateway.adminUrl!));
  }, 30_000);
  afterAll(() => stack?.close());

  it('the exported set comes from the running gateway: its own families, histograms as _bucket/_sum/_count, process metrics', () => {
    expect(exported.get('mcp_gateway_upstream_response_seconds_bucket')).toEqual(new Set(['le', 'route']));
    expect(exported.has('mcp_gateway_upstream_response_seconds')).toBe(false);
    expect(exported.get('mcp_gateway_token_failures_total')).toEqual(new Set(['route', 'reason']));
    expect(exported.get('mcp_gateway_upstream_errors_total')).toEqual(new Set(['route', 'reason']));
    expect(exported.has('process_cpu_seconds_total')).toBe(true);
  });

  describe('the Grafana dashboard', () => {
    it('parses, and names only metrics and labels the gateway exports', () => {
      expect(dashboardProblems(dashboard, exported)).toEqual([]);
      expect(dashboardQueries(dashboard).length).toBeGreaterThan(20);
    });

    it('has a panel for every family the gateway exports, and upstream latency as quantiles over the buckets', () => {
      const named = new Set(dashboardQueries(dashboard).flatMap((q) => parsePromQL(q.promql).selectors.map((s) => s.metric)));
      const families = [...exported.keys()].filter((name) => name.startsWith('mcp_gateway_') && !/_(sum|count)$/.test(name));
      expect(families.filter((name) => !named.has(name))).toEqual([]);
      const latency = dashboardQueries(dashboard).filter((q) => q.expr.includes('mcp_gateway_upstream_response_seconds_bucket'));
      expect(latency.map((q) => /^histogram_quantile\(0\.\d+, sum by \(le, route\) \(rate\(/.test(q.expr))).toEqual([true, true, true]);
      expect(panelsOf(dashboard).map((p) => p.title)).toEqual(
        expect.arrayContaining(['Responses by status class', 'Decisions by effect and reason', 'Token failures by reason', 'Upstream response time', 'Upstream errors', 'Open SSE streams by route', 'Store', 'Config reloads', 'Readiness by replica']),
      );
    });

    it('the checks catch a metric the gateway does not export, a wrong label, a syntax error, an unknown variable, a panel off $datasource', () => {
      const broken = (edit: (copy: Dashboard) => void) => {
        const copy = structuredClone(dashboard);
        edit(copy);
        return dashboardProblems(copy, exported);
      };
      const firstTarget = (copy: Dashboard) => panelsOf(copy).find((p) => p.targets?.length)!.targets![0]!;
      expect(broken((d) => void (firstTarget(d).expr = 'sum(mcp_gateway_ready_total{job=~"$job"})'))).toEqual([expect.stringMatching(/metric mcp_gateway_ready_total is not exported by the gateway$/)]);
      expect(broken((d) => void (firstTarget(d).expr = 'sum(rate(mcp_gateway_requests_total{rout=~"$route"}[$__rate_interval]))'))).toEqual([expect.stringMatching(/mcp_gateway_requests_total has no label rout$/)]);
      expect(broken((d) => void (firstTarget(d).expr = 'sum by (reasn) (rate(mcp_gateway_token_failures_total[5m]))'))).toEqual([expect.stringMatching(/grouping by reasn/)]);
      expect(broken((d) => void (firstTarget(d).expr = 'sum(rate(mcp_gateway_requests_total[$__rate_interval])'))).toEqual([expect.stringMatching(/syntax error/)]);
      expect(broken((d) => void (firstTarget(d).expr = 'sum(mcp_gateway_ready{job=~"$jobs"})'))).toEqual([expect.stringMatching(/unknown variable \$jobs$/)]);
      expect(broken((d) => void (firstTarget(d).expr = 'sum({__name__=~"mcp_gateway_.*"})'))).toEqual([expect.stringMatching(/without a metric name/)]);
      expect(broken((d) => void (panelsOf(d).find((p) => p.type !== 'row')!.datasource = { type: 'prometheus', uid: 'prometheus' }))).toEqual([expect.stringMatching(/not on the \$datasource variable$/)]);
      expect(broken((d) => void (d.templating.list = d.templating.list.filter((v) => v.name !== 'route')))).toContain('no `route` variable from label_values(…, route)');
      expect(broken((d) => void (d.schemaVersion = 36))).toEqual(['schemaVersion 36 < 39']);
    });
  });

  describe('the PrometheusRule', () => {
    it('validates against the Prometheus Operator CRD schemas, with no field they do not know', async () => {
      expect(monitoring.map(kindOf).sort()).toEqual(['Kustomization', 'PrometheusRule', 'ServiceMonitor']);
      const manifests = monitoring.filter((d) => kindOf(d) !== 'Kustomization');
      const problems = await Promise.all(manifests.map(async (d) => [d.where, await schemaProblem(d.object)] as const));
      expect(problems.filter(([, problem]) => problem)).toEqual([]);
      expect(unknownFieldProblems(manifests)).toEqual([]);
      // The same checks refuse a broken copy.
      const misspelt = structuredClone(rule) as unknown as { spec: { groups: Record<string, unknown>[] } };
      misspelt.spec.groups[0]!.rulez = misspelt.spec.groups[0]!.rules;
      expect(unknownFieldProblems([{ where: 'misspelt', object: misspelt }])).toEqual([expect.stringMatching(/^misspelt: .*'"rulez"' does not exist/)]);
      const badFor = structuredClone(rule);
      badFor.spec.groups[0]!.rules[0]!.for = 'ten minutes';
      expect(await schemaProblem(badFor as unknown as Record<string, unknown>)).toMatch(/for must match pattern/);
    });

    it('every alert parses, names only exported metrics and labels, and has for:, a severity, a summary and a description', () => {
      expect(ruleProblems(rule, exported)).toEqual([]);
      expect(alertsOf(rule).length).toBeGreaterThanOrEqual(5);
    });

    it('alerts on upstream errors, token-failure spikes, a store outage, refused reloads and unready replicas', () => {
      const alertsOn = (metric: string) => alertsOf(rule).filter((r) => metricsOf(r).includes(metric)).map((r) => r.alert);
      expect(alertsOn('mcp_gateway_upstream_errors_total')).toEqual(['McpGatewayUpstreamErrors']);
      expect(alertsOn('mcp_gateway_token_failures_total')).toEqual(['McpGatewayTokenFailureSpike']);
      expect(alertsOn('mcp_gateway_store_up')).toEqual(['McpGatewayStoreDown']);
      expect(alertsOn('mcp_gateway_config_last_reload_refused')).toEqual(['McpGatewayConfigReloadRefused']);
      expect(alertsOn('mcp_gateway_ready')).toEqual(['McpGatewayReplicaNotReady', 'McpGatewayNoReadyReplica', 'McpGatewayMetricsAbsent']);
      // Clients discover the authorization server with a 401 without a token: not a failure spike.
      expect(String(alertsOf(rule).find((r) => r.alert === 'McpGatewayTokenFailureSpike')!.expr)).toContain('reason!="missing"');
    });

    it('the checks catch an alert on a metric the gateway does not export, a syntax error, and a missing for:, severity or description', () => {
      const broken = (edit: (copy: PrometheusRuleDoc) => void) => {
        const copy = structuredClone(rule);
        edit(copy);
        return ruleProblems(copy, exported);
      };
      const first = (copy: PrometheusRuleDoc) => copy.spec.groups[0]!.rules[0]!;
      expect(broken((r) => void (first(r).expr = 'mcp_gateway_store_down == 1'))).toEqual([expect.stringMatching(/metric mcp_gateway_store_down is not exported/)]);
      expect(broken((r) => void (first(r).expr = 'rate(mcp_gateway_requests_total[5m] > 1'))).toEqual([expect.stringMatching(/syntax error/)]);
      expect(broken((r) => void (first(r).expr = 'mcp_gateway_store_up{store="redis"} == 0'))).toEqual([expect.stringMatching(/mcp_gateway_store_up has no label store$/)]);
      expect(broken((r) => void delete first(r).for)).toEqual([expect.stringMatching(/: no for:$/)]);
      expect(broken((r) => void delete first(r).labels)).toEqual([expect.stringMatching(/severity label/)]);
      expect(broken((r) => void (first(r).annotations!.description = ' '))).toEqual([expect.stringMatching(/no description annotation$/)]);
    });
  });

  describe('the ServiceMonitor', () => {
    interface ServiceSpec { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] }
    interface Endpoint { port?: string; path?: string }
    interface ServiceMonitorDoc { spec: { selector: { matchLabels: Record<string, string> }; endpoints: Endpoint[] } }
    interface NetworkPolicySpec {
      podSelector: { matchLabels: Record<string, string> };
      ingress?: { from?: { namespaceSelector?: { matchLabels?: Record<string, string> } }[]; ports?: { port: string | number }[] }[];
    }
    /** Where the manifests expect Prometheus (networkpolicy.yaml and service-monitor.yaml say so). */
    const PROMETHEUS_NAMESPACE = 'monitoring';

    /**
     * What keeps a ServiceMonitor from scraping the gateway's admin listener: it selects no
     * Service of the ingress example (or more than the gateway's), names a port that Service
     * does not have, a port that is not the admin listener's, a path other than /metrics, or a
     * port no NetworkPolicy admits from Prometheus' namespace.
     */
    function serviceMonitorProblems(monitor: ServiceMonitorDoc, docs: YamlDocument[] = ingress): string[] {
      const problems: string[] = [];
      const selected = docs.filter((d) => {
        const labels = (d.object.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {};
        return kindOf(d) === 'Service' && Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => labels[k] === v);
      });
      if (selected.length !== 1) return [`selects ${selected.length} Services of the ingress example, not the gateway's alone`];
      const service = selected[0]!.object.spec as ServiceSpec;
      const deployment = docs.find((d) => kindOf(d) === 'Deployment' && (d.object.metadata as { name: string }).name === 'mcp-auth-gateway')!;
      const pod = (deployment.object.spec as { template: { metadata: { labels: Record<string, string> }; spec: { containers: { name: string; ports?: { name?: string; containerPort: number }[] }[] } } }).template;
      const gateway = pod.spec.containers.find((c) => c.name === 'gateway')!;
      const configMap = the(docs, 'ConfigMap') as { data: Record<string, string> };
      const adminPort = (parseYaml(configMap.data['gateway.yaml']!) as { admin: { listen: { port: number } } }).admin.listen.port;
      const policies = docs.filter((d) => kindOf(d) === 'NetworkPolicy').map((d) => d.object.spec as NetworkPolicySpec);
      for (const endpoint of monitor.spec.endpoints) {
        const port = service.ports.find((p) => p.name === endpoint.port);
        if (!port) {
          problems.push(`port ${endpoint.port} is not a port of the Service`);
          continue;
        }
        const containerPort = gateway.ports?.find((p) => p.name === port.targetPort || p.containerPort === port.targetPort);
        if (containerPort?.containerPort !== adminPort) problems.push(`port ${endpoint.port} does not lead to the admin listener (${adminPort})`);
        if ((endpoint.path ?? '/metrics') !== '/metrics') problems.push(`path ${endpoint.path} is not /metrics`);
        const admitted = policies.some(
          (policy) =>
            Object.entries(policy.podSelector.matchLabels).every(([k, v]) => pod.metadata.labels[k] === v) &&
            (policy.ingress ?? []).some(
              (rule) =>
                rule.from?.some((peer) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === PROMETHEUS_NAMESPACE) &&
                rule.ports?.some((p) => p.port === containerPort?.name || p.port === containerPort?.containerPort),
            ),
        );
        if (!admitted) problems.push(`no NetworkPolicy admits Prometheus (namespace ${PROMETHEUS_NAMESPACE}) to port ${endpoint.port}`);
      }
      return problems;
    }

    const monitor = the(monitoring, 'ServiceMonitor') as unknown as ServiceMonitorDoc;

    it("scrapes /metrics on the ingress example's admin port, which Prometheus' namespace may reach", () => {
      expect(serviceMonitorProblems(monitor)).toEqual([]);
      expect(monitor.spec.endpoints.map((e) => e.port)).toEqual(['admin']);
    });

    it('the check catches a wrong port, a wrong path, a selector that matches no Service, and a NetworkPolicy that shuts Prometheus out', () => {
      const broken = (edit: (copy: ServiceMonitorDoc) => void) => {
        const copy = structuredClone(monitor);
        edit(copy);
        return serviceMonitorProblems(copy);
      };
      expect(broken((m) => void (m.spec.endpoints[0]!.port = 'metrics'))).toEqual(['port metrics is not a port of the Service']);
      expect(broken((m) => void (m.spec.endpoints[0]!.port = 'http'))).toEqual([expect.stringMatching(/does not lead to the admin listener/), expect.stringMatching(/no NetworkPolicy admits/)]);
      expect(broken((m) => void (m.spec.endpoints[0]!.path = '/stats'))).toEqual(['path /stats is not /metrics']);
      expect(broken((m) => void (m.spec.selector.matchLabels = { app: 'gateway' }))).toEqual([expect.stringMatching(/selects 0 Services/)]);
      const closed = ingress.map((d) => {
        if (kindOf(d) !== 'NetworkPolicy') return d;
        const object = structuredClone(d.object) as { spec: NetworkPolicySpec };
        object.spec.ingress = object.spec.ingress?.filter((rule) => !rule.ports?.some((p) => p.port === 'admin'));
        return { ...d, object: object as unknown as Record<string, unknown> };
      });
      expect(serviceMonitorProblems(monitor, closed)).toEqual([expect.stringMatching(/no NetworkPolicy admits Prometheus \(namespace monitoring\) to port admin/)]);
    });

    it("the folder's kustomization applies both into the ingress example's namespace", () => {
      const kustomization = the(monitoring, 'Kustomization') as { namespace: string; resources: string[] };
      expect(kustomization.resources.sort()).toEqual(['prometheus-rule.yaml', 'service-monitor.yaml']);
      expect(kustomization.namespace).toBe((parseYaml(readFileSync(`${INGRESS_DIR}/kustomization.yaml`, 'utf8')) as { namespace: string }).namespace);
    });
  });
});
