import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { TODO_POLICY } from './stack.js';

/** What a test that runs the gateway as its own process stands on: an IdP, an upstream, a config dir. */
export interface ProcessBed {
  readonly idp: DevIdp;
  readonly upstream: SampleUpstream;
  /** Holds todo.yaml (TODO_POLICY); the test writes its gateway.yaml beside it. */
  readonly dir: string;
  close(): Promise<void>;
}

export async function startProcessBed(name: string, responseMode: 'json' | 'sse'): Promise<ProcessBed> {
  const idp = await startDevIdp({ scopes: ['todo:read'] });
  const upstream = await startSampleUpstream({ responseMode });
  const dir = await mkdtemp(join(tmpdir(), `mcp-gw-${name}-`));
  await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
  return {
    idp,
    upstream,
    dir,
    async close() {
      await upstream.close();
      await idp.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Writes the bed's gateway.yaml: one /mcp route to its upstream with todo.yaml, its IdP trusted,
 * any `extraLines` (top-level YAML) before the issuers. Returns the file's path.
 */
export async function writeSingleRouteConfig(bed: ProcessBed, extraLines: readonly string[] = []): Promise<string> {
  const file = join(bed.dir, 'gateway.yaml');
  await writeFile(
    file,
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      ...extraLines,
      'issuers:',
      `  - issuer: ${bed.idp.issuer}`,
      'routes:',
      `  - { name: todo, path: /mcp, upstream: "${bed.upstream.url}", policy: todo.yaml }`,
    ].join('\n'),
  );
  return file;
}
