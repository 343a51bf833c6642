import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ConfigProblem } from './problems.js';

export type YamlPath = readonly (string | number)[];

/**
 * A parsed YAML file that remembers where every value came from, so validation errors can
 * name file:line:col. Duplicate keys are syntax errors here: a policy must never mean two
 * things depending on which parser reads it.
 */
export class YamlSource {
  readonly problems: ConfigProblem[] = [];
  readonly value: unknown;
  private readonly doc: Document.Parsed;
  private readonly lines = new LineCounter();

  constructor(
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, uniqueKeys: true, prettyErrors: false });
    for (const error of [...this.doc.errors, ...this.doc.warnings]) {
      const [start] = error.pos;
      this.problems.push(this.problemAtOffset(start, error.message.split('\n')[0] ?? error.message));
    }
    // Even with errors (a duplicate key, say) the document usually still reads, so the caller can
    // go on to find every other problem in the same pass. An empty file is an empty mapping.
    this.value = this.readValue();
  }

  private readValue(): unknown {
    try {
      return this.doc.toJS() ?? {};
    } catch {
      return undefined;
    }
  }

  /** A problem located at the value found at `path` (or its nearest existing ancestor). */
  problemAt(path: YamlPath, message: string, opts: { atKey?: boolean } = {}): ConfigProblem {
    return this.problemAtOffset(this.offsetOf(path, opts.atKey ?? false), message);
  }

  private problemAtOffset(offset: number, message: string): ConfigProblem {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, col, message };
  }

  private offsetOf(path: YamlPath, atKey: boolean): number {
    for (let depth = path.length; depth >= 0; depth--) {
      const prefix = path.slice(0, depth);
      if (atKey && depth === path.length && depth > 0) {
        const keyNode = this.keyNode(prefix.slice(0, -1), prefix[depth - 1]!);
        if (keyNode?.range) return keyNode.range[0];
        continue;
      }
      const node = prefix.length === 0 ? this.doc.contents : (this.doc.getIn(prefix, true) as Node | undefined);
      if (node && typeof node === 'object' && 'range' in node && node.range) return node.range[0];
    }
    return 0;
  }

  private keyNode(parentPath: YamlPath, key: string | number): Node | undefined {
    const parent = parentPath.length === 0 ? this.doc.contents : this.doc.getIn(parentPath, true);
    if (!isMap(parent)) return undefined;
    for (const item of parent.items) {
      if (isPair(item) && isScalar(item.key) && item.key.value === key) return item.key;
    }
    return undefined;
  }
}

/** Turns a JSON Pointer (as in Ajv's instancePath) into a YAML path. */
export function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((segment) => (/^(0|[1-9][0-9]*)$/.test(segment) ? Number(segment) : segment));
}
