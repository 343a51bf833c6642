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
  return matchWithStars(glob, name, isStar, matchesOneChar);
}

const isStar = (part: string) => part === '*';
const matchesOneChar = (part: string, char: string) => part === '?' || part === char;

/**
 * The greedy walk with one resumption point shared by name globs (a star spans characters) and
 * path globs (a `**` spans segments): O(pattern × items) at worst, never backtracking further
 * than the last star.
 */
export function matchWithStars<P, I>(pattern: readonly P[], items: readonly I[], star: (part: P) => boolean, matchesOne: (part: P, item: I) => boolean): boolean {
  let p = 0;
  let i = 0;
  let lastStar = -1; // position in pattern of the last star
  let resume = 0; // position in items that the star currently extends to
  while (i < items.length) {
    const part = pattern[p];
    if (p < pattern.length && !star(part!) && matchesOne(part!, items[i]!)) {
      p++;
      i++;
    } else if (p < pattern.length && star(part!)) {
      lastStar = p++;
      resume = i;
    } else if (lastStar !== -1) {
      p = lastStar + 1;
      i = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && star(pattern[p]!)) p++;
  return p === pattern.length;
}

export function isGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}
