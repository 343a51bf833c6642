import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/* Loosely typed views of the manifest parts this file reads (the schema tests check the rest). */
interface KeyToPath { key: string; path: string }
interface ConfigMapSource { name: string; items?: KeyToPath[] }
interface SecretSource { name?: string; secretName?: string; items?: KeyToPath[] }
export interface Volume {
  name: string;
  configMap?: ConfigMapSource;
  secret?: SecretSource;
  projected?: { sources: { configMap?: ConfigMapSource; secret?: SecretSource }[] };
  emptyDir?: object;
}
export interface VolumeMount { name: string; mountPath: string; subPath?: string }
export interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: VolumeMount[];
}
export interface ObjectSource { kind: string; metadata: { name: string }; data?: Record<string, string>; stringData?: Record<string, string> }

/**
 * A self-signed EC certificate and key (PEM), made once, for Secrets of kubernetes.io/tls shape,
 * with the certificate also as `ca.crt` (as cert-manager writes it): self-signed, it is its own CA.
 */
type TlsFiles = { 'tls.crt': string; 'tls.key': string; 'ca.crt': string };
let tlsPair: TlsFiles | undefined;
async function placeholderTls(dir: string): Promise<TlsFiles> {
  if (!tlsPair) {
    const [cert, key] = [join(dir, 'placeholder.crt'), join(dir, 'placeholder.key')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=placeholder'], { stdio: 'ignore' });
    const certificate = await readFile(cert, 'utf8');
    tlsPair = { 'tls.crt': certificate, 'tls.key': await readFile(key, 'utf8'), 'ca.crt': certificate };
  }
  return tlsPair;
}

/**
 * What a Secret the manifests do not hold (created by the operator) would contain: a usable TLS
 * pair for tls.crt and tls.key (and its certificate as ca.crt), a placeholder string for any
 * other key. Its keys must be named
 * through `items`, since nothing else says which keys exist.
 */
async function secretData(source: SecretSource, objects: readonly ObjectSource[], scratch: string): Promise<Record<string, string>> {
  const name = source.secretName ?? source.name!;
  const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === name);
  if (secret) return { ...Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()])), ...secret.stringData };
  if (!source.items) throw new Error(`Secret ${name} is not in the manifests: list its keys under items`);
  const tls = await placeholderTls(scratch);
  return Object.fromEntries(source.items.map(({ key }) => [key, key in tls ? tls[key as keyof typeof tls] : `placeholder-${key}\n`]));
}

/** The files one configMap or secret source projects: path (relative to the mount) → content. */
async function projectedFiles(
  source: { configMap?: ConfigMapSource; secret?: SecretSource },
  objects: readonly ObjectSource[],
  scratch: string,
): Promise<Map<string, string>> {
  let data: Record<string, string>;
  let items: KeyToPath[] | undefined;
  if (source.configMap) {
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === source.configMap!.name);
    if (!configMap) throw new Error(`ConfigMap ${source.configMap.name} is not in the manifests`);
    data = configMap.data ?? {};
    items = source.configMap.items;
  } else if (source.secret) {
    data = await secretData(source.secret, objects, scratch);
    items = source.secret.items;
  } else {
    throw new Error(`unsupported volume source ${JSON.stringify(source)}`);
  }
  const entries = items ? items.map(({ key, path }) => [path, data[key]] as const) : Object.entries(data);
  const files = new Map<string, string>();
  for (const [path, content] of entries) {
    if (content === undefined) throw new Error(`volume source names a key its object does not have: ${path}`);
    files.set(path, content);
  }
  return files;
}

/**
 * Writes under `root` the files `container` sees through its volume mounts, as kubelet would
 * (ConfigMap, Secret and projected volumes; emptyDir as an empty directory). subPath mounts are
 * refused: kubelet never updates them, so hot reload would silently stop working.
 */
export async function writeMountedFiles(root: string, container: Container, volumes: readonly Volume[], objects: readonly ObjectSource[]): Promise<void> {
  for (const mount of container.volumeMounts ?? []) {
    if (mount.subPath !== undefined) throw new Error(`${container.name}: subPath mount ${mount.mountPath} is never updated by kubelet`);
    const volume = volumes.find((v) => v.name === mount.name);
    if (!volume) throw new Error(`${container.name}: no volume named ${mount.name}`);
    const sources = volume.projected?.sources ?? (volume.configMap || volume.secret ? [volume] : []);
    await mkdir(join(root, mount.mountPath), { recursive: true });
    for (const source of sources) {
      for (const [path, content] of await projectedFiles(source, objects, root)) {
        const target = join(root, mount.mountPath, path);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, content);
      }
    }
  }
}

/** The value after `--config` in a container's args. */
export function configPathOf(container: Container): string | undefined {
  const args = container.args ?? [];
  const at = args.indexOf('--config');
  return at >= 0 ? args[at + 1] : undefined;
}
