import { posix } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { explainRequest } from '../../src/policy/explain.js';
import { compileGlob } from '../../src/policy/glob.js';
import { parsePolicy } from '../../src/policy/load.js';
import { compilePathGlob } from '../../src/policy/path-glob.js';
import { pathValueProblem } from '../../src/policy/path-value.js';
import type { CompiledPolicy } from '../../src/policy/types.js';

/**
 * Argument globs have path semantics (issue 23): an upstream that builds `/repos/${repo}` from a
 * value `acme/*` admitted must act on something under `acme/`, however it decodes or resolves it.
 */
const matches = (pattern: string, value: string) => compilePathGlob(pattern)(value);

describe('path glob matching', () => {
  it('keeps * and ? within one segment', () => {
    expect(matches('acme/*', 'acme/widgets')).toBe(true);
    expect(matches('acme/*', 'acme/team/widgets')).toBe(false);
    expect(matches('acme/w*s', 'acme/widgets')).toBe(true);
    expect(matches('acme/w*s', 'acme/w/s')).toBe(false);
    expect(matches('acme/?', 'acme/x')).toBe(true);
    expect(matches('acme/???', 'acme/a/b')).toBe(false);
    expect(matches('*/*', 'acme/widgets')).toBe(true);
    expect(matches('*', 'acme/widgets')).toBe(false);
    expect(matches('acme-*', 'acme-api')).toBe(true);
  });

  it('lets a ** segment cross segments: none in the middle, at least one at the end', () => {
    expect(matches('acme/**', 'acme/widgets')).toBe(true);
    expect(matches('acme/**', 'acme/team/widgets/main')).toBe(true);
    expect(matches('acme/**', 'acme')).toBe(false);
    expect(matches('acme/**', 'acmeevil/x')).toBe(false);
    expect(matches('a/**/b', 'a/b')).toBe(true);
    expect(matches('a/**/b', 'a/x/y/b')).toBe(true);
    expect(matches('a/**/b', 'a/x/y/c')).toBe(false);
    expect(matches('**/*.json', 'exports/2026/week.json')).toBe(true);
    expect(matches('**/*.json', 'exports/2026/week.csv')).toBe(false);
    expect(matches('a/**/b/**/c', 'a/b/x/b/c')).toBe(true);
    // Within a segment, ** is just two stars: it does not cross.
    expect(matches('acme/x**', 'acme/x/y')).toBe(false);
  });

  it('matches an absolute value only with an absolute pattern', () => {
    expect(matches('/srv/data/*', '/srv/data/a')).toBe(true);
    expect(matches('*/data/*', '/data/a')).toBe(false);
    expect(matches('**', '/etc/passwd')).toBe(false);
    expect(matches('/srv/**', 'srv/x')).toBe(false);
  });

  it('refuses a value with a dot segment even where the pattern would admit it (the issue)', () => {
    expect(matches('acme/*', 'acme/../evil/repo')).toBe(false);
    expect(matches('acme/**', 'acme/../evil/repo')).toBe(false);
    expect(matches('acme/**', 'acme/widgets/../../evil')).toBe(false);
    expect(matches('acme/**', 'acme/./widgets')).toBe(false);
    expect(matches('acme/**', 'acme/widgets/v1.2')).toBe(true);
  });

  it('leaves tool, resource and prompt globs as they were: * crosses /', () => {
    expect(compileGlob('todo://*')('todo://item/1')).toBe(true);
    expect(compileGlob('acme/*')('acme/a/b')).toBe(true);
  });

  it('never matches a value that is not a string, as a policy argument', () => {
    const policy = compiled('tools:\n  t:\n    scopes: [s]\n    arguments: { v: { glob: "**" } }\n');
    for (const v of [1, true, null, ['a'], { a: 'b' }]) expect(decide(policy, { v })).toBe('deny');
    expect(decide(policy, { v: 'a' })).toBe('allow');
  });
});

describe('values a path glob refuses', () => {
  it.each([
    ['backslash', ['acme\\..\\evil', 'acme/a\\b', 'acme/a%5cb', 'acme/a\uff3cb']],
    ['control-character', ['acme/a\nb', 'acme/a\u0000', 'acme/a%00', 'acme/a%0d%0aHost:x', 'acme/\u0085']],
    ['dot-segment', ['.', '..', 'acme/..', 'acme/./x', 'acme/%2e%2e', 'acme/%2E%2e/x', 'acme/.%2e', 'acme/...', 'acme/.. ', 'acme/..;x', 'acme/\uff0e\uff0e', 'acme/\u2025']],
    ['empty-segment', ['', '/', 'acme//x', 'acme/', '//evil.example/x']],
    ['hidden-separator', ['acme%2f..%2fevil', 'acme/a%2Fb', 'acme/a\uff0fb', 'acme/\u2100']],
    ['double-encoded', ['acme/%252e%252e', 'acme/%252f', 'acme/%2541', 'acme/%%32%65%%32%65', 'acme/%2%65']],
    ['malformed-escape', ['acme/%c0%ae%c0%ae', 'acme/%ff', 'acme/%e0%80%ae', 'acme/%ed%a0%80']],
  ] as const)('%s', (problem, values) => {
    for (const value of values) expect([value, pathValueProblem(value)]).toEqual([value, problem]);
  });

  it('accepts ordinary names, escapes of ordinary characters and a lone %', () => {
    for (const value of ['acme/widgets', 'acme/a b', 'acme/a%20b', 'acme/v1.2.3', 'acme/.github', 'acme/..x', 'acme/caf%C3%A9', 'acme/100%', '/srv/x', 'ok: ship it']) {
      expect([value, pathValueProblem(value)]).toEqual([value, undefined]);
    }
  });
});

describe('argument glob patterns at load time', () => {
  const problems = (glob: string) => {
    const result = parsePolicy('p.yaml', `tools:\n  open_pr:\n    scopes: [a]\n    arguments:\n      repo: { glob: ${JSON.stringify(glob)} }\n`);
    return result.ok ? [] : result.problems.map((p) => `${p.line}:${p.col} ${p.message}`);
  };

  it('refuses, where written, a pattern only a refused value could match', () => {
    expect(problems('acme/../*')).toEqual(["5:21 tools.open_pr.arguments.repo.glob has a '.' or '..' segment, which no value may have"]);
    expect(problems('./acme/*')).toEqual(["5:21 tools.open_pr.arguments.repo.glob has a '.' or '..' segment, which no value may have"]);
    expect(problems('acme/%2e%2e/*')).toEqual(["5:21 tools.open_pr.arguments.repo.glob has a '.' or '..' segment, which no value may have"]);
    expect(problems('acme\\*')).toEqual(['5:21 tools.open_pr.arguments.repo.glob has a backslash, which no value may have']);
    expect(problems('acme//*')).toEqual(["5:21 tools.open_pr.arguments.repo.glob has an empty segment ('//' or a trailing '/'), which no value may have"]);
  });

  it('accepts ordinary path globs (positive control)', () => {
    for (const glob of ['acme/*', 'acme/**', '/srv/*/logs/**', 'exports/**/*.json', 'v?.*', 'ok:*']) expect([glob, problems(glob)]).toEqual([glob, []]);
  });
});

function compiled(text: string): CompiledPolicy {
  const result = parsePolicy('p.yaml', text);
  if (!result.ok) throw new Error(result.problems.map((p) => p.message).join('\n'));
  return result.policy;
}

function decide(policy: CompiledPolicy, args: Record<string, unknown>): string {
  return explainRequest(policy, new Set(['s']), { kind: 'tool-call', tool: 't', arguments: args }).decision;
}

/** One percent-decoding pass as a typical upstream does it (decodeURIComponent, else byte by byte). */
function decodeOnce(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value.replace(/%[0-9a-f]{2}/gi, (escape) => String.fromCharCode(Number.parseInt(escape.slice(1), 16)));
  }
}

/** Every reading an upstream might give the value: as is, decoded once or twice, backslashes as separators, NFKC. */
function readings(value: string): string[] {
  const once = decodeOnce(value);
  const forms = [value, once, decodeOnce(once), once.normalize('NFKC')];
  return [...forms, ...forms.map((form) => form.replaceAll('\\', '/'))].map((form) => posix.normalize(form));
}

describe('path glob properties', () => {
  const SAFE = [...'abcxyzABC019-_~.', 'é', 'ß', '中', ' ', '%20'];
  const safeSegment = fc.string({ unit: fc.constantFrom(...SAFE), minLength: 1, maxLength: 6 }).filter((s) => /[^. ]/.test(s.replaceAll('%20', ' ')));
  const prefix = fc.array(fc.constantFrom('acme', 'team', 'repos', 'a.b'), { minLength: 1, maxLength: 2 }).map((parts) => parts.join('/'));
  const HOSTILE = ['..', '.', '%2e', '%2E%2e', '.%2e', '%252e', '%25%32%65', '%2f', '%2F..', '\\', '..\\..', '', '..;x', '...', '.. ', '\uff0e\uff0e', '\u2025', '\uff0f', '%c0%ae', 'x', 'acme', 'evil', '*', '?'];
  const hostileValue = fc.oneof(
    fc.array(fc.oneof(fc.constantFrom(...HOSTILE), safeSegment), { minLength: 1, maxLength: 6 }).map((parts) => parts.join('/')),
    fc.string({ unit: fc.constantFrom('.', '/', '%', '2', '5', 'e', 'E', 'f', '\\', 'a', 'c', 'm'), maxLength: 24 }),
    fc.string({ maxLength: 12 }),
  );
  const policyFor = (glob: string) => compiled(`tools:\n  t:\n    scopes: [s]\n    arguments: { v: { glob: ${JSON.stringify(glob)} } }\n`);

  it('denies every value that some reading puts outside the prefix, for p/* and p/**', () => {
    fc.assert(
      fc.property(prefix, fc.constantFrom('*', '**'), fc.boolean(), hostileValue, (p, tail, prefixed, rest) => {
        const value = prefixed ? `${p}/${rest}` : rest;
        const outside = readings(value).some((reading) => !reading.startsWith(`${p}/`));
        if (outside) expect(decide(policyFor(`${p}/${tail}`), { v: value })).toBe('deny');
      }),
      { numRuns: 3000 },
    );
  });

  it('allows every value of safe segments under the prefix (positive control)', () => {
    fc.assert(
      fc.property(prefix, fc.array(safeSegment, { minLength: 1, maxLength: 4 }), (p, segments) => {
        expect(decide(policyFor(`${p}/**`), { v: `${p}/${segments.join('/')}` })).toBe('allow');
        expect(decide(policyFor(`${p}/*`), { v: `${p}/${segments[0]}` })).toBe('allow');
        expect(decide(policyFor(`${p}/*`), { v: `${p}/${segments.join('/')}/x` })).toBe('deny');
      }),
      { numRuns: 1000 },
    );
  });

  it('matches a long hostile value without backtracking (ReDoS)', () => {
    const hostile = [
      ['a/**/a/**/a/**/a/**/b', 'a/'.repeat(100_000) + 'c', false],
      ['**/*a*a*a*a*b/**', `${'a'.repeat(20_000)}/`.repeat(25) + 'a', false],
      ['acme/*', `acme/${'%25'.repeat(300_000)}`, true],
      ['acme/*', `acme/${'%2'.repeat(300_000)}e`, true],
      ['acme/**', `acme/${'./'.repeat(300_000)}x`, false],
      ['acme/**', `acme/${'x/'.repeat(300_000)}..`, false],
    ] as const;
    for (const [glob, value, expected] of hostile) {
      const started = performance.now();
      const allowed = matches(glob, value);
      const ms = performance.now() - started;
      expect([glob, allowed, ms < 2_000]).toEqual([glob, expected, true]);
    }
  });
});
