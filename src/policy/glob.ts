/**
 * Compiles a name glob (`*` any run of characters, `?` one character, everything else literal)
 * into an anchored matcher. Tool names are case-sensitive (MCP tools §Tool Names), so is this.
 */
export function compileGlob(pattern: string): (name: string) => boolean {
  let source = '';
  for (const ch of pattern) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    // Only syntax characters are escaped: with the `u` flag, escaping anything else (`-`, `/`) is an error.
    else source += ch.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
  }
  // `s`: a newline in a name is still matched by `*`, never a way out of it; `u`: `?` is one code point.
  const regex = new RegExp(`^${source}$`, 'su');
  return (name) => regex.test(name);
}

export function isGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}
