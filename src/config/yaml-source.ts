import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ConfigProblem } from './problems.js';
import { realignments, STRUCTURE_ERRORS, type Realignment } from './yaml-indentation.js';

export interface YamlSourceOptions {
  /**
   * How badly a value fits what the file should hold (its schema's error count): when one stray
   * indent could be any of several lines, the file is read the way that fits best.
   */
  readonly misfit?: (value: unknown) => number;
}

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
  /** The one line indented unlike its neighbours, when that explains every structural error. */
  private readonly realigned: Realignment | undefined;

  constructor(
    readonly file: string,
    text: string,
    options: YamlSourceOptions = {},
  ) {
    const parse = (yaml: string, lineCounter?: LineCounter) =>
      parseDocument(yaml, { ...(lineCounter ? { lineCounter } : {}), uniqueKeys: true, prettyErrors: false });
    let doc = parse(text, this.lines);
    const structural = doc.errors.find((e) => STRUCTURE_ERRORS.has(e.code));
    // One stray indent: reported once, at that line, and the file read as if it were aligned, so
    // the lines after it are checked as written rather than each reported out of place.
    this.realigned = structural && bestFit(
      realignments(text, structural.pos[0], (yaml) => !parse(yaml).errors.some((e) => STRUCTURE_ERRORS.has(e.code))),
      options.misfit && ((realignment) => options.misfit!(valueOf(parse(realignment.text)))),
    );
    if (this.realigned) {
      this.lines = new LineCounter();
      doc = parse(this.realigned.text, this.lines);
      const { line, written, expected } = this.realigned;
      this.problems.push({ file, line: line + 1, col: written + 1, message: misalignment(text.split('\n')[line]!, written, expected) });
    }
    this.doc = doc;
    for (const error of [...this.doc.errors, ...this.doc.warnings]) {
      const [start] = error.pos;
      this.problems.push(this.problemAtOffset(start, error.message.split('\n')[0] ?? error.message));
    }
    // Even with errors (a duplicate key, say) the document usually still reads, so the caller can
    // go on to find every other problem in the same pass. An empty file is an empty mapping.
    this.value = this.readValue();
  }

  private readValue(): unknown {
    return valueOf(this.doc);
  }

  /** A problem located at the value found at `path` (or its nearest existing ancestor). */
  problemAt(path: YamlPath, message: string, opts: { atKey?: boolean } = {}): ConfigProblem {
    return this.problemAtOffset(this.offsetOf(path, opts.atKey ?? false), message);
  }

  private problemAtOffset(offset: number, message: string): ConfigProblem {
    const { line, col } = this.lines.linePos(offset);
    // Offsets are in the realigned text: on the realigned line, columns as written.
    const shift = this.realigned && line === this.realigned.line + 1 ? this.realigned.written - this.realigned.expected : 0;
    return { file: this.file, line, col: Math.max(1, col + shift), message };
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

function valueOf(doc: Document.Parsed): unknown {
  try {
    return doc.toJS() ?? {};
  } catch {
    return undefined;
  }
}

/** The first candidate with the lowest misfit (all tie without one). */
function bestFit(candidates: Realignment[], misfit: ((r: Realignment) => number) | undefined): Realignment | undefined {
  if (!misfit || candidates.length < 2) return candidates[0];
  let best: { candidate: Realignment; score: number } | undefined;
  for (const candidate of candidates) {
    const score = misfit(candidate);
    if (!best || score < best.score) best = { candidate, score };
    if (score === 0) break;
  }
  return best?.candidate;
}

function misalignment(line: string, written: number, expected: number): string {
  const match = /^\s*(?:"([^"]*)"|'([^']*)'|([^\s:#'"-][^:#]*)):(\s|$)/.exec(line);
  const key = match?.[1] ?? match?.[2] ?? match?.[3];
  const spaces = (n: number) => `${n} space${n === 1 ? '' : 's'}`;
  return (
    `${key === undefined ? 'this line' : `'${key}'`} is indented by ${spaces(written)}, its siblings by ${expected} (in YAML the` +
    ` items of a block start in one column); the rest of the file was read as if it were ${expected}`
  );
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
