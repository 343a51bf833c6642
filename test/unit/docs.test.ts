import { existsSync, globSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The README is the opening screen (what it is, the commands, the demo) and the reference lives
 * in docs/: every relative link in either points at a file and a heading that exist, and the
 * part before "Run it" stays one screen long.
 */
const ROOT = new URL('../../', import.meta.url).pathname;
const FILES = ['README.md', ...globSync('docs/**/*.md', { cwd: ROOT })];

function headingAnchors(text: string): Set<string> {
  return new Set([...text.matchAll(/^#+ (.*)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')));
}

describe('documentation', () => {
  it('the README opens with what it is, how to try it and the demo, on one screen', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const opening = readme.slice(0, readme.indexOf('\n## Run it'));
    expect(opening).toContain('## Try it');
    expect(opening).toContain('npm run demo');
    expect(opening.split('\n').length).toBeLessThanOrEqual(50);
  });

  it('the README links every reference document in docs/', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const docs = globSync('docs/*.md', { cwd: ROOT });
    expect(docs.filter((doc) => !readme.includes(`](${doc})`))).toEqual([]);
  });

  it.each(FILES)('every relative link in %s resolves to a file and heading', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const broken: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(https?:|mailto:)/.test(target!)) continue;
      const [path, anchor] = target!.split('#') as [string, string | undefined];
      const full = path === '' ? join(ROOT, file) : normalize(join(ROOT, dirname(file), path));
      if (!existsSync(full)) broken.push(`${target} (no such file)`);
      else if (anchor && full.endsWith('.md') && !headingAnchors(readFileSync(full, 'utf8')).has(anchor)) broken.push(`${target} (no such heading)`);
    }
    expect(broken).toEqual([]);
  });
});
