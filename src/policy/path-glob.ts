import { matchGlob, matchWithStars } from './glob.js';
import { pathValueProblem } from './path-value.js';

/** A `**` segment: any number of whole segments. */
const GLOBSTAR = Symbol('**');
type Segment = readonly string[] | typeof GLOBSTAR;

/**
 * Compiles an argument glob with path semantics: the pattern and the value are split on `/`;
 * `*` and `?` stay within one segment (matchGlob on the segment), and a segment that is exactly
 * `**` matches any number of whole segments. A trailing `**` needs at least one, so `acme/**`
 * covers what lies under `acme/`, not `acme` itself (an upstream acting on the parent is not what
 * the author granted). A leading `/` is an empty first segment, matched only by a pattern that
 * starts with `/` too; any other empty segment never matches.
 *
 * The same greedy walk as matchGlob, one level up, with `**` as the star: every non-star pattern
 * segment consumes exactly one value segment, so resuming from the last star only is enough.
 * O(pattern × value) character steps at worst, no backtracking (ReDoS).
 *
 * This matcher only matches; refusing dot segments and encoded separators is pathValueProblem's
 * job, and compilePathGlob's matcher applies both.
 */
export function compilePathGlob(pattern: string): (value: string) => boolean {
  const parts = pattern.split('/');
  const absolute = parts[0] === '';
  if (absolute) parts.shift();
  const segments: Segment[] = parts.map((part) => (part === '**' ? GLOBSTAR : Array.from(part)));
  if (parts.at(-1) === '**') segments.push(['*']);
  return (value) => {
    if (pathValueProblem(value) !== undefined) return false;
    const path = value.split('/');
    if ((path[0] === '') !== absolute) return false;
    if (absolute) path.shift();
    return matchSegments(segments, path);
  };
}

function matchSegments(glob: readonly Segment[], path: readonly string[]): boolean {
  if (path.includes('')) return false;
  const chars = path.map((segment) => Array.from(segment));
  return matchWithStars(glob, chars, isGlobstar, matchesSegment);
}

const isGlobstar = (segment: Segment) => segment === GLOBSTAR;
const matchesSegment = (segment: Segment, chars: readonly string[]) => matchGlob(segment as readonly string[], chars);
