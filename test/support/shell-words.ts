/**
 * Splits one command line as sh does, for the commands docs and the demo print: blanks, single
 * and double quotes, `$NAME` from `env`, and a `#` comment. Anything else sh would treat
 * specially (pipes, substitutions, redirections) is refused, so a command needing a real shell
 * cannot pass for a plain one.
 */
export function shellWords(line: string, env: Record<string, string> = {}): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let i = 0;
  const variable = (): string => {
    const name = /^\$([A-Za-z_]\w*)/.exec(line.slice(i))?.[1];
    if (name === undefined) throw new Error(`a lone $ in: ${line}`);
    const value = env[name];
    if (value === undefined) throw new Error(`$${name} is not set in: ${line}`);
    i += name.length + 1;
    return value;
  };
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
      i += 1;
    } else if (c === '#' && word === undefined) {
      break;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      word ??= '';
      for (i += 1; line[i] !== '"'; ) {
        if (i >= line.length) throw new Error(`unterminated " in: ${line}`);
        if (line[i] === '$') word += variable();
        else if (line[i] === '\\') (word += line[i + 1]), (i += 2);
        else (word += line[i]), (i += 1);
      }
      i += 1;
    } else if (c === '$') {
      word = (word ?? '') + variable();
    } else if ('\\`;|&<>()*?'.includes(c)) {
      throw new Error(`not a plain command (${c}): ${line}`);
    } else {
      word = (word ?? '') + c;
      i += 1;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}
