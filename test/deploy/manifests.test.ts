import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../../src/config/duration.js';
import { BIN, runCli } from '../support/gateway-process.js';
import { deployYamlFiles, parseYamlDocuments, type YamlDocument } from './deploy-files.js';
import { schemaProblem, unknownFieldProblems } from './kubernetes-schema.js';
import { configPathOf, writeMountedFiles, type Container, type ObjectSource, type Volume } from './pod-files.js';

const FOLDERS = ['deploy/kubernetes/sidecar', 'deploy/kubernetes/ingress'];

/** Documents per manifest file: a `---` too many or too few changes what is applied. */
const EXPECTED_DOCUMENTS: Record<string, number> = {
  'deploy/kubernetes/ingress/configmap.yaml': 1,
  'deploy/kubernetes/ingress/deployment.yaml': 1,
  'deploy/kubernetes/ingress/hpa.yaml': 1,
  'deploy/kubernetes/ingress/ingress.yaml': 1,
  'deploy/kubernetes/ingress/kustomization.yaml': 1,
  'deploy/kubernetes/ingress/namespace.yaml': 1,
  'deploy/kubernetes/ingress/networkpolicy.yaml': 2,
  'deploy/kubernetes/ingress/pdb.yaml': 1,
  'deploy/kubernetes/ingress/redis.yaml': 2,
  'deploy/kubernetes/ingress/service.yaml': 1,
  'deploy/kubernetes/sidecar/configmap.yaml': 1,
  'deploy/kubernetes/sidecar/deployment.yaml': 1,
  'deploy/kubernetes/sidecar/kustomization.yaml': 1,
  'deploy/kubernetes/sidecar/service.yaml': 1,
};

interface PodSpec {
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  containers: (Container & {
    securityContext?: { runAsNonRoot?: boolean; allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] }; seccompProfile?: { type: string } };
    resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  })[];
  volumes?: Volume[];
}
interface Workload { where: string; name: string; replicas?: number; labels: Record<string, string>; pod: PodSpec }
interface Folder { dir: string; manifests: YamlDocument[]; kustomization: Record<string, unknown>; workloads: Workload[] }

const kindOf = (doc: YamlDocument) => String(doc.object.kind);
const nameOf = (doc: YamlDocument) => String((doc.object.metadata as { name?: string } | undefined)?.name);

function loadFolder(dir: string): Folder {
  const files = deployYamlFiles(dir);
  const docs = files.flatMap((file) => parseYamlDocuments(file, '1.1'));
  const kustomization = docs.find((d) => d.object.kind === 'Kustomization');
  const manifests = docs.filter((d) => d !== kustomization);
  const workloads = manifests
    .filter((d) => kindOf(d) === 'Deployment')
    .map((d) => {
      const spec = d.object.spec as { replicas?: number; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
      return { where: d.where, name: nameOf(d), replicas: spec.replicas, labels: spec.template.metadata.labels, pod: spec.template.spec };
    });
  return { dir, manifests, kustomization: kustomization?.object ?? {}, workloads };
}

/** The gateway containers (those started with `--config`) and the pod they run in. */
const gatewayContainers = (folder: Folder) =>
  folder.workloads.flatMap((workload) => workload.pod.containers.filter((c) => configPathOf(c)).map((container) => ({ workload, container })));

const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

function portNumber(container: Container, port: string | number): number | undefined {
  return typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort;
}

it('deploy/ holds no YAML file that these tests (and compose.test.ts, monitoring.test.ts) do not check', () => {
  const monitoring = ['deploy/kubernetes/monitoring/kustomization.yaml', 'deploy/kubernetes/monitoring/prometheus-rule.yaml', 'deploy/kubernetes/monitoring/service-monitor.yaml'];
  const checked = [...FOLDERS.flatMap((dir) => deployYamlFiles(dir)), ...monitoring, 'deploy/compose/compose.yaml', 'deploy/compose/gateway/gateway.yaml'];
  expect(deployYamlFiles()).toEqual(checked.sort());
});

describe('Kubernetes manifests under deploy/kubernetes', () => {
  const folders = FOLDERS.map(loadFolder);
  let scratch: string;

  beforeAll(async () => {
    expect(existsSync(BIN), 'dist/src/bin.js is missing: run `npm run build` (npm test does)').toBe(true);
    scratch = await mkdtemp(join(tmpdir(), 'mcp-gw-deploy-'));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('are read document by document, every one of them', () => {
    const counts = Object.fromEntries(FOLDERS.flatMap(deployYamlFiles).map((file) => [file, parseYamlDocuments(file, '1.1').length]));
    expect(counts).toEqual(EXPECTED_DOCUMENTS);
  });

  it('every document validates against the Kubernetes schema of its apiVersion and kind', async () => {
    const manifests = folders.flatMap((f) => f.manifests);
    const problems = (await Promise.all(manifests.map(async (d) => [d.where, await schemaProblem(d.object)] as const))).filter(([, problem]) => problem);
    expect(problems).toEqual([]);
    // Every document but the two kustomization.yaml files went through the validator.
    expect(manifests.length).toBe(Object.values(EXPECTED_DOCUMENTS).reduce((a, b) => a + b) - FOLDERS.length);
  });

  it('no document has a field the schemas do not know (the API server would refuse it)', () => {
    expect(unknownFieldProblems(folders.flatMap((f) => f.manifests))).toEqual([]);
  });

  it('the checks above catch broken manifests', async () => {
    const deployment = folders[1]!.manifests.find((d) => kindOf(d) === 'Deployment')!;
    const wrongType = structuredClone(deployment.object) as { spec: { template: { spec: PodSpec } } };
    (wrongType.spec.template.spec.containers[0]!.ports![0] as { containerPort: unknown }).containerPort = '8080';
    expect(await schemaProblem(wrongType)).toMatch(/containerPort must be integer/);
    expect(await schemaProblem({ ...deployment.object, kind: 'Deploymnet' })).toMatch(/unknown apiVersion\/kind/);
    const misspelt = structuredClone(deployment.object) as { spec: { template: { spec: PodSpec } } };
    Object.assign(misspelt.spec.template.spec.containers[0]!, { livenesProbe: {} });
    expect(await schemaProblem(misspelt)).toBeUndefined();
    expect(unknownFieldProblems([{ where: 'misspelt', object: misspelt }])).toEqual([expect.stringMatching(/^misspelt: .*'"livenesProbe"' does not exist/)]);
    // kubectl reads YAML 1.1: an unquoted `off` is a boolean, not a Redis argument.
    const [redis] = parseYamlDocuments('inline.yaml', '1.1', readFileSync('deploy/kubernetes/ingress/redis.yaml', 'utf8').replace('- "off"', '- off'));
    expect(await schemaProblem(redis!.object)).toMatch(/args\/\d+ must be string/);
  });

  it.each(FOLDERS)('%s/kustomization.yaml lists every manifest beside it and names the gateway image', (dir) => {
    const folder = folders.find((f) => f.dir === dir)!;
    const others = readdirSync(dir).filter((name) => /\.ya?ml$/.test(name) && name !== 'kustomization.yaml');
    expect(folder.kustomization).toMatchObject({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization' });
    expect([...(folder.kustomization.resources as string[])].sort()).toEqual(others.sort());
    const images = (folder.kustomization.images as { name: string }[]).map((i) => i.name);
    for (const { container } of gatewayContainers(folder)) expect(images).toContain(container.image.split(':')[0]);
  });

  it.each(FOLDERS)("%s: each gateway config passes `mcp-auth-gateway validate` with exactly the files its container sees", async (dir) => {
    const folder = folders.find((f) => f.dir === dir)!;
    const objects = folder.manifests.map((d) => d.object as unknown as ObjectSource);
    const gateways = gatewayContainers(folder);
    expect(gateways.length).toBeGreaterThan(0);
    for (const { workload, container } of gateways) {
      const root = await mkdtemp(join(scratch, `${basename(dir)}-`));
      await writeMountedFiles(root, container, workload.pod.volumes ?? [], objects);
      const config = join(root, configPathOf(container)!);
      const result = await runCli(['validate', '--config', config]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      // The same files with one mistake fail: the check cannot pass by not looking.
      await writeFile(config, (await readFile(config, 'utf8')).replace(/publicUrl: https:/, 'publicUrl: http:'));
      const broken = await runCli(['validate', '--config', config]);
      expect(broken.code).not.toBe(0);
      expect(broken.stderr + broken.stdout).toMatch(/publicUrl .* must use https/);
    }
  });

  it.each(FOLDERS)('%s: gateways are probed on the admin listener and drain within terminationGracePeriodSeconds', async (dir) => {
    const folder = folders.find((f) => f.dir === dir)!;
    for (const { workload, container } of gatewayContainers(folder)) {
      const root = await mkdtemp(join(scratch, `${basename(dir)}-`));
      await writeMountedFiles(root, container, workload.pod.volumes ?? [], folder.manifests.map((d) => d.object as unknown as ObjectSource));
      const config = parseYaml(await readFile(join(root, configPathOf(container)!), 'utf8')) as {
        listen: { port: number };
        admin?: { listen: { host?: string; port: number } };
        shutdown?: { drainDelay?: string; gracePeriod?: string };
      };
      expect(config.admin?.listen.host, `${workload.where}: an admin listener on the Pod address (kubelet probes it, not loopback)`).toBe('0.0.0.0');
      expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(portNumber(container, container.readinessProbe!.httpGet!.port)).toBe(config.admin!.listen.port);
      expect(portNumber(container, container.livenessProbe!.httpGet!.port)).toBe(config.admin!.listen.port);
      expect(container.ports?.map((p) => p.containerPort)).toContain(config.listen.port);
      const drainMs = parseDuration(config.shutdown?.drainDelay ?? '0s') + parseDuration(config.shutdown?.gracePeriod ?? '20s');
      expect(workload.pod.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(drainMs);
    }
  });

  it.each(FOLDERS)('%s: every container runs unprivileged, read-only, with resource requests', (dir) => {
    for (const { where, pod } of folders.find((f) => f.dir === dir)!.workloads) {
      for (const c of pod.containers) {
        const at = `${where} container ${c.name}`;
        expect(c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, at).toBe(true);
        expect((c.securityContext?.seccompProfile ?? pod.securityContext?.seccompProfile)?.type, at).toBe('RuntimeDefault');
        expect(c.securityContext, at).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
        expect(c.resources?.requests, at).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
        expect(c.resources?.limits?.memory, at).toEqual(expect.any(String));
      }
    }
  });

  it('the Ingress tells ingress-nginx not to buffer SSE and to keep quiet streams open, and attaches no Traefik middleware', () => {
    const ingress = folders[1]!.manifests.find((d) => kindOf(d) === 'Ingress')!;
    const annotations = (ingress.object.metadata as { annotations?: Record<string, string> }).annotations ?? {};
    // ingress-nginx buffers responses by default: an SSE event would wait for the buffer to fill.
    expect(annotations['nginx.ingress.kubernetes.io/proxy-buffering']).toBe('off');
    // Its 60s default would cut a stream that has nothing to say for a minute.
    for (const timeout of ['proxy-read-timeout', 'proxy-send-timeout']) {
      expect(annotations[`nginx.ingress.kubernetes.io/${timeout}`], timeout).toMatch(/^\d+$/);
      expect(Number(annotations[`nginx.ingress.kubernetes.io/${timeout}`]), timeout).toBeGreaterThanOrEqual(3600);
    }
    // Traefik flushes text/event-stream at once unless a Buffering middleware is attached.
    expect(Object.keys(annotations).filter((key) => key.startsWith('traefik.ingress.kubernetes.io/router.middlewares'))).toEqual([]);
  });

  it('the ingress gateway reaches Redis over TLS, checking its certificate against the CA of the Secret Redis serves it from', async () => {
    const folder = folders[1]!;
    const objects = folder.manifests.map((d) => d.object as unknown as ObjectSource);
    const [{ workload, container }] = gatewayContainers(folder) as [{ workload: Workload; container: Container }];
    const root = await mkdtemp(join(scratch, 'redis-tls-'));
    await writeMountedFiles(root, container, workload.pod.volumes ?? [], objects);
    const configFile = join(root, configPathOf(container)!);
    const store = (parseYaml(await readFile(configFile, 'utf8')) as { store: { url: string; tls?: { caFile?: string } } }).store;
    expect(store.url).toMatch(/^rediss:\/\//);
    expect(store.tls?.caFile).toEqual(expect.any(String));
    // The file the gateway reads is in its container, and is a certificate (from the Secret's ca.crt).
    expect(await readFile(join(configFile, '..', store.tls!.caFile!), 'utf8')).toContain('-----BEGIN CERTIFICATE-----');
    // The Secret that file comes from: the gateway is given the CA certificate and nothing else of it.
    const caPath = join(dirname(configPathOf(container)!), store.tls!.caFile!);
    const [caSecret] = (container.volumeMounts ?? []).flatMap((mount) =>
      (workload.pod.volumes?.find((v) => v.name === mount.name)?.projected?.sources ?? []).flatMap((source) =>
        source.secret?.items?.some((item) => join(mount.mountPath, item.path) === caPath) ? [source.secret] : [],
      ),
    );
    expect(caSecret?.items?.map((item) => item.key)).toEqual(['ca.crt']);
    // Redis serves TLS only, on the port its Service names, with the certificate from that Secret.
    const redis = folder.workloads.find((w) => w.name === 'redis')!;
    const server = redis.pod.containers[0]!;
    const arg = (name: string) => server.args![server.args!.indexOf(name) + 1];
    expect(arg('--port')).toBe('0');
    const service = folder.manifests.find((d) => kindOf(d) === 'Service' && nameOf(d) === 'redis')!.object.spec as { ports: { port: number }[] };
    expect(Number(arg('--tls-port'))).toBe(service.ports[0]!.port);
    expect(Number(new URL(store.url).port)).toBe(service.ports[0]!.port);
    const tlsMount = server.volumeMounts!.find((m) => arg('--tls-cert-file')!.startsWith(`${m.mountPath}/`))!;
    expect(redis.pod.volumes!.find((v) => v.name === tlsMount.name)?.secret?.secretName).toBe(caSecret!.name);
  });

  it('Services, the Ingress, the PDB, the HPA and NetworkPolicies refer to what the manifests define', () => {
    const ingress = folders[1]!;
    const of = (kind: string) => ingress.manifests.filter((d) => kindOf(d) === kind);
    const podsMatching = (selector: Record<string, string>) => [...folders[0]!.workloads, ...ingress.workloads].filter((w) => selects(selector, w.labels));
    const services = [...folders[0]!.manifests, ...ingress.manifests].filter((d) => kindOf(d) === 'Service');
    for (const service of services) {
      const spec = service.object.spec as { selector: Record<string, string>; ports: { name: string; targetPort: string }[] };
      const [workload, ...more] = podsMatching(spec.selector);
      expect(workload, `${service.where} selects no workload`).toBeDefined();
      expect(more).toEqual([]);
      for (const port of spec.ports) expect(workload!.pod.containers.some((c) => c.ports?.some((p) => p.name === port.targetPort)), `${service.where} ${port.name}`).toBe(true);
    }
    for (const rule of (of('Ingress')[0]!.object.spec as { rules: { http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] } }[] }).rules) {
      for (const { backend } of rule.http.paths) {
        const service = of('Service').find((s) => nameOf(s) === backend.service.name);
        expect((service?.object.spec as { ports: { name: string }[] } | undefined)?.ports.map((p) => p.name)).toContain(backend.service.port.name);
      }
    }
    const hpa = of('HorizontalPodAutoscaler')[0]!.object.spec as { scaleTargetRef: { kind: string; name: string }; minReplicas: number };
    const target = ingress.workloads.find((w) => w.name === hpa.scaleTargetRef.name);
    expect(target, 'the HPA scales a Deployment of the manifests').toBeDefined();
    expect(target!.replicas, 'with an HPA, spec.replicas would be reset on every apply').toBeUndefined();
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(3);
    for (const doc of [...of('PodDisruptionBudget'), ...of('NetworkPolicy')]) {
      const spec = doc.object.spec as {
        selector?: { matchLabels: Record<string, string> };
        podSelector?: { matchLabels: Record<string, string> };
        ingress?: { ports?: { port: string | number }[] }[];
      };
      const pods = podsMatching((spec.selector ?? spec.podSelector)!.matchLabels);
      expect(pods, `${doc.where} selects nothing`).not.toEqual([]);
      const named = (spec.ingress ?? []).flatMap((rule) => rule.ports ?? []).filter((p) => typeof p.port === 'string');
      for (const { port } of named) expect(pods[0]!.pod.containers.some((c) => c.ports?.some((p) => p.name === port)), `${doc.where} port ${port}`).toBe(true);
    }
  });
});
