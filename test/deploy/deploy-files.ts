import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const DEPLOY_DIR = 'deploy';

/** Every YAML file under deploy/, as repository-relative paths, sorted. */
export function deployYamlFiles(dir = DEPLOY_DIR): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return deployYamlFiles(path);
      return /\.ya?ml$/.test(entry.name) ? [relative('.', path)] : [];
    })
    .sort();
}

export interface YamlDocument {
  /** `file#index`, for messages. */
  readonly where: string;
  readonly object: Record<string, unknown>;
}

/**
 * Every document of a YAML file, each of which must be a mapping. `version: '1.1'` reads
 * Kubernetes manifests as kubectl does (YAML 1.1: an unquoted `on`, `off`, `yes` or `no` is a
 * boolean there, and would not be where a string belongs); compose files are read as YAML 1.2.
 * Syntax errors, duplicate keys and empty documents throw.
 */
export function parseYamlDocuments(file: string, version: '1.1' | '1.2', text = readFileSync(file, 'utf8')): YamlDocument[] {
  return parseAllDocuments(text, { version }).map((doc, index) => {
    const where = `${file}#${index}`;
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) throw new Error(`${where}: ${problems.map((p) => p.message).join('; ')}`);
    const object: unknown = doc.toJS();
    if (object === null || typeof object !== 'object' || Array.isArray(object)) throw new Error(`${where}: not a mapping (an empty document?)`);
    return { where, object: object as Record<string, unknown> };
  });
}
