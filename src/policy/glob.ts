/**
 * Compiles a name glob (`*` any run of characters, `?` one character, everything else literal)
 * into a matcher. Tool names are case-sensitive (MCP tools §Tool Names), so is this.
 *
 * Not a regular expression: a backtracking regex with several `*` takes polynomial time on a
 * long hostile name. This greedy matcher with one resumption point is O(pattern × name) at worst
 * and linear in practice, and names are capped in length before they get here.
 */
export function compileGlob(pattern: string): (name: string) => boolean {
  const glob = Array.from(pattern);
  return (name) => matchGlob(glob, Array.from(name));
}

/** One glob (as code points) against one name (as code points); shared with path globs. */
export function matchGlob(glob: readonly string[], name: readonly string[]): boolean {
  let g = 0;
  let n = 0;
  let star = -1; // position in glob of the last `*`
  let resume = 0; // position in name that `*` currently extends to
  while (n < name.length) {
    if (g < glob.length && glob[g] !== '*' && (glob[g] === '?' || glob[g] === name[n])) {
      g++;
      n++;
    } else if (g < glob.length && glob[g] === '*') {
      star = g++;
      resume = n;
    } else if (star !== -1) {
      g = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === '*') g++;
  return g === glob.length;
}

export function isGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}
