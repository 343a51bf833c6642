import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NAME = 'mcp-auth-gateway';

/**
 * This package's version, read from its package.json when asked, so `--version` says what is
 * installed and no copy in the code can drift from it. The module sits in src/ (tests) or
 * dist/src/ (the built command), so the file is looked for upwards, skipping any package.json
 * that is not this package's.
 */
export function packageVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = readManifest(join(dir, 'package.json'));
    if (manifest?.name === NAME && typeof manifest.version === 'string') return manifest.version;
    if (dirname(dir) === dir) throw new Error(`no package.json of ${NAME} above ${fileURLToPath(import.meta.url)}`);
  }
}

function readManifest(file: string): { name?: unknown; version?: unknown } | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
  } catch {
    return undefined;
  }
}
