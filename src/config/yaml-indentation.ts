/**
 * One line indented unlike its neighbours makes the YAML parser misread every line after it:
 * each later sibling is "not at the same column", each key lands in the wrong mapping and the
 * schema finds it unknown there. This finds that one line, so it can be reported once, where it
 * is, and the rest of the file checked as it was meant.
 */

/** Parser errors that a line out of alignment causes (and that realigning it must clear). */
export const STRUCTURE_ERRORS: ReadonlySet<string> = new Set([
  'BAD_INDENT',
  'UNEXPECTED_TOKEN',
  'MISSING_CHAR',
  'BLOCK_AS_IMPLICIT_KEY',
  'MULTILINE_IMPLICIT_KEY',
]);

export interface Realignment {
  /** The line (0-based) indented unlike its neighbours. */
  readonly line: number;
  /** Its indentation as written, and the one it is read with. */
  readonly written: number;
  readonly expected: number;
  /** The whole text with that line realigned. */
  readonly text: string;
}

/** Lines around the first error that may be the culprit: it is at, or a little before, that error. */
const LOOK_BEHIND = 40;
const LOOK_AHEAD = 10;
/**
 * A broken file may arrive by hot reload, on the serving event loop: a bounded number of tries,
 * the likeliest first, each parsing only the block around the error (a root mapping of its own
 * from the nearest line at most as indented as any in the window); the few that pass there are
 * confirmed on the whole file.
 */
const MAX_TRIES = 40;
const MAX_FOUND = 3;

/**
 * Single-line realignments (to an indentation used nearby) after which `isClean` holds,
 * likeliest first: the new indentation one usual step below the line's parent, then matching a
 * comment just above it, then the smallest move, then the nearest to the error. Empty when no
 * single line explains the errors (more than one mistake, or another kind). The caller may
 * prefer the one under which the file makes most sense (fewest schema problems).
 */
export function realignments(text: string, errorOffset: number, isClean: (text: string) => boolean): Realignment[] {
  const lines = text.split('\n');
  const indents = lines.map((line) => (isContent(line) ? leading(line) : undefined));
  const errorLine = text.slice(0, errorOffset).split('\n').length - 1;
  const step = usualStep(lines, indents);
  const first = Math.max(0, errorLine - LOOK_BEHIND);
  const last = Math.min(lines.length - 1, errorLine + LOOK_AHEAD);
  const nearby = new Set(indents.slice(first, last + 1).filter((i) => i !== undefined));

  const tries: { line: number; written: number; expected: number; rank: number[] }[] = [];
  for (let line = first; line <= last; line++) {
    const written = indents[line];
    if (written === undefined) continue;
    for (const expected of nearby) {
      if (expected === written) continue;
      const parent = parentIndent(indents, line, expected);
      const rank = [
        expected - (parent ?? -step) === step ? 0 : 1,
        commentAbove(lines, line) === expected ? 0 : 1,
        Math.abs(expected - written),
        Math.abs(line - errorLine),
      ];
      tries.push({ line, written, expected, rank });
    }
  }
  const lowest = Math.min(...nearby);
  let start = first;
  while (start > 0 && !(indents[start] !== undefined && indents[start]! <= lowest)) start--;
  let end = last + 1;
  while (end < lines.length && !(indents[end] !== undefined && indents[end]! <= lowest)) end++;
  const realigned = (line: number, written: number, expected: number, from: number, to: number) =>
    [...lines.slice(from, line), ' '.repeat(expected) + lines[line]!.slice(written), ...lines.slice(line + 1, to)].join('\n');

  const found: Realignment[] = [];
  for (const { line, written, expected } of tries.sort((a, b) => compareRanks(a.rank, b.rank)).slice(0, MAX_TRIES)) {
    if (line < start || !isClean(realigned(line, written, expected, start, end))) continue;
    const text = realigned(line, written, expected, 0, lines.length);
    if (isClean(text)) found.push({ line, written, expected, text });
    if (found.length === MAX_FOUND) break;
  }
  return found;
}

/** A line the parser reads for structure: not blank, not only a comment. */
function isContent(line: string): boolean {
  const trimmed = line.trim();
  return trimmed !== '' && !trimmed.startsWith('#');
}

function leading(line: string): number {
  return /^ */.exec(line)![0].length;
}

/** The indentation of the nearest content line above this one that is less indented than `indent`. */
function parentIndent(indents: readonly (number | undefined)[], line: number, indent: number): number | undefined {
  for (let i = line - 1; i >= 0; i--) if (indents[i] !== undefined && indents[i]! < indent) return indents[i];
  return undefined;
}

/** The indentation of a comment line right above this one, if any. */
function commentAbove(lines: readonly string[], line: number): number | undefined {
  const above = lines[line - 1];
  return above !== undefined && above.trim().startsWith('#') ? leading(above) : undefined;
}

/** How far this file indents a block under its key, most often (2 when it never does). */
function usualStep(lines: readonly string[], indents: readonly (number | undefined)[]): number {
  const counts = new Map<number, number>();
  let previous: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const indent = indents[i];
    if (indent === undefined) continue;
    if (previous !== undefined && indent > indents[previous]! && /:\s*(#.*)?$/.test(lines[previous]!)) {
      const step = indent - indents[previous]!;
      counts.set(step, (counts.get(step) ?? 0) + 1);
    }
    previous = i;
  }
  return [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0] ?? 2;
}

function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
