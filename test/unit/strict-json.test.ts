import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findDuplicateKey } from '../../src/mcp/strict-json.js';

/**
 * findDuplicateKey guards the policy against a body that means one thing to JSON.parse (the last
 * of duplicate keys) and another to the upstream (often the first). Property: for any JSON text
 * whose objects may repeat a key, spelled the same or through escapes, it names the first key
 * that repeats within one object, in document order, and nothing when no object repeats one.
 * Objects up to 24 keys exercise both ways it remembers keys (a short list, then a Set).
 */

type Value = { readonly kind: 'object'; readonly pairs: readonly (readonly [string, Spelling, Value])[] } | { readonly kind: 'array'; readonly items: readonly Value[] } | { readonly kind: 'scalar'; readonly text: string };

/** How one occurrence of a key is written: as JSON.stringify writes it, every character as \uXXXX, or with "/" as "\/". */
type Spelling = 'plain' | 'unicode' | 'solidus';

// Few distinct keys, so that objects repeat them often; some need escaping, one holds a "/".
const KEYS = ['a', 'b', 'k', 'id', 'name', 'a/b', 'q"', 'é', '\\', 'x y', 'tools', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'n9'];

const spelling = fc.constantFrom<Spelling>('plain', 'plain', 'unicode', 'solidus');
const scalar = fc.constantFrom('1', 'null', 'true', '"a"', '"{\\"a\\":1,"', '"}],{"', '"\\\\"', '-2.5e3').map((text): Value => ({ kind: 'scalar', text }));

const { value } = fc.letrec<{ value: Value; object: Value; array: Value }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('object'), tie('array')),
  object: fc.array(fc.tuple(fc.constantFrom(...KEYS), spelling, tie('value')), { maxLength: 24 }).map((pairs): Value => ({ kind: 'object', pairs })),
  array: fc.array(tie('value'), { maxLength: 4 }).map((items): Value => ({ kind: 'array', items })),
}));

function spell(key: string, how: Spelling): string {
  if (how === 'unicode') return `"${[...key].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`;
  const plain = JSON.stringify(key);
  return how === 'solidus' ? plain.replaceAll('/', '\\/') : plain;
}

function write(v: Value): string {
  if (v.kind === 'scalar') return v.text;
  if (v.kind === 'array') return `[${v.items.map(write).join(',')}]`;
  return `{${v.pairs.map(([key, how, inner]) => `${spell(key, how)}:${write(inner)}`).join(',')}}`;
}

/** The first key repeated within one object, in the order the text holds them. */
function firstRepeat(v: Value): string | undefined {
  if (v.kind === 'scalar') return undefined;
  if (v.kind === 'array') {
    for (const item of v.items) {
      const found = firstRepeat(item);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  const seen = new Set<string>();
  for (const [key, , inner] of v.pairs) {
    if (seen.has(key)) return key;
    seen.add(key);
    const found = firstRepeat(inner);
    if (found !== undefined) return found;
  }
  return undefined;
}

describe('findDuplicateKey, for any JSON text', () => {
  it('names the first key an object repeats, however it is spelled, and nothing otherwise', () => {
    fc.assert(
      fc.property(value, (v) => {
        const text = write(v);
        JSON.parse(text); // the generator writes valid JSON only
        expect(findDuplicateKey(text)).toBe(firstRepeat(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('finds a repeat past the keys it keeps as a short list, and none in as many distinct keys', () => {
    const distinct = Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`).join(',');
    expect(findDuplicateKey(`{${distinct}}`)).toBeUndefined();
    expect(findDuplicateKey(`{${distinct},"k3":0}`)).toBe('k3');
    expect(findDuplicateKey(`{${distinct},"\\u006b39":0}`)).toBe('k39');
  });

  it('stays linear in the number of keys (an object of 100,000 keys is no denial of service)', () => {
    const keys = Array.from({ length: 100_000 }, (_, i) => `"key${i}":0`).join(',');
    const started = performance.now();
    expect(findDuplicateKey(`{${keys},"key99999":1}`)).toBe('key99999');
    // Quadratic (a list searched for every key) takes minutes here; linear takes tens of ms.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
