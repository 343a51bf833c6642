import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BoundedMap, type BoundedMapOptions } from '../../src/cache/bounded-map.js';

/** A map weighed by its values' lengths, on a clock the test moves. */
function weighed(options: Partial<BoundedMapOptions<string, string>> = {}) {
  const clock = { now: 0 };
  const map = new BoundedMap<string, string>({ maxEntries: 100, maxWeight: 10, weigh: (_, value) => value.length, now: () => clock.now, ...options });
  return { map, clock };
}

describe('BoundedMap: count', () => {
  it('drops the oldest-inserted entry first, and a set of a key already there makes it the newest', () => {
    const map = new BoundedMap<string, number>({ maxEntries: 3 });
    map.set('a', 1);
    map.set('b', 2);
    map.set('c', 3);
    map.set('a', 10); // now the newest
    map.set('d', 4);
    expect([...map.keys()]).toEqual(['c', 'a', 'd']);
    expect(map.get('b')).toBeUndefined();
    expect(map.get('a')).toBe(10);
    expect(map.size).toBe(3);
  });

  it("by insertion, a get changes nothing; with order 'use', a get makes the entry newest", () => {
    const byInsertion = new BoundedMap<string, number>({ maxEntries: 2 });
    const byUse = new BoundedMap<string, number>({ maxEntries: 2, order: 'use' });
    for (const map of [byInsertion, byUse]) {
      map.set('a', 1);
      map.set('b', 2);
      expect(map.get('a')).toBe(1);
      map.set('c', 3);
    }
    expect([...byInsertion.keys()]).toEqual(['b', 'c']);
    expect([...byUse.keys()]).toEqual(['a', 'c']);
  });

  it("with whenFull 'clear', a set into a full map starts it over", () => {
    const map = new BoundedMap<string, number>({ maxEntries: 3, whenFull: 'clear' });
    for (const [i, key] of ['a', 'b', 'c'].entries()) map.set(key, i);
    map.set('b', 20); // replacing a key does not fill the map
    expect([...map.keys()]).toEqual(['a', 'c', 'b']);
    map.set('d', 4);
    expect([...map.keys()]).toEqual(['d']);
  });

  it('refuses a bound under one entry', () => {
    expect(() => new BoundedMap({ maxEntries: 0 })).toThrow(RangeError);
  });
});

describe('BoundedMap: weight', () => {
  it('drops the oldest entries until the new one fits, and gives their weight back', () => {
    const { map } = weighed();
    map.set('full', 'x'.repeat(6));
    map.set('up', 'xxxx'); // exactly maxWeight: fits
    expect([...map.keys()]).toEqual(['full', 'up']);
    map.clear();
    map.set('a', 'xxxx');
    map.set('b', 'xxx');
    map.set('c', 'xx');
    expect(map.weight).toBe(9);
    map.set('d', 'xxxxxx'); // 9 + 6 > 10: a goes (5 + 6 > 10 still), then b (2 + 6)
    expect([...map.keys()]).toEqual(['c', 'd']);
    expect(map.weight).toBe(8);
  });

  it('does not keep an entry heavier than maxEntryWeight (maxWeight by default), and forgets what its key held', () => {
    const { map } = weighed({ maxEntryWeight: 4 });
    map.set('a', 'xx');
    map.set('b', 'xxx');
    expect(map.set('a', 'xxxxx')).toBe(false);
    expect(map.get('a')).toBeUndefined();
    expect([...map.keys()]).toEqual(['b']); // b was not dropped to make room
    expect(map.weight).toBe(3);
    const byDefault = weighed().map;
    expect(byDefault.set('a', 'x'.repeat(10))).toBe(true);
    expect(byDefault.set('b', 'x'.repeat(11))).toBe(false);
    expect(byDefault.weight).toBe(10);
  });

  it('counts a replaced value once, and delete and clear give the weight back', () => {
    const { map } = weighed();
    map.set('a', 'xxx');
    map.set('a', 'xxxxx');
    expect(map.weight).toBe(5);
    expect(map.delete('a')).toBe(true);
    expect(map.delete('a')).toBe(false);
    expect(map.weight).toBe(0);
    map.set('b', 'xx');
    map.clear();
    expect({ size: map.size, weight: map.weight }).toEqual({ size: 0, weight: 0 });
  });
});

describe('BoundedMap: expiry', () => {
  it('answers an entry until its expiry time, then forgets it and its weight', () => {
    const { map, clock } = weighed();
    map.set('a', 'xxx', 1_000);
    clock.now = 999;
    expect(map.get('a')).toBe('xxx');
    clock.now = 1_000;
    expect(map.get('a')).toBeUndefined();
    expect({ size: map.size, weight: map.weight }).toEqual({ size: 0, weight: 0 });
  });

  it('does not keep a value already expired, and forgets what its key held', () => {
    const { map, clock } = weighed();
    clock.now = 500;
    map.set('a', 'x', 1_000);
    expect(map.set('a', 'y', 500)).toBe(false);
    expect(map.get('a')).toBeUndefined();
    expect(map.size).toBe(0);
  });

  it('never reads the clock for entries without an expiry time', () => {
    const map = new BoundedMap<string, number>({
      maxEntries: 2,
      now: () => {
        throw new Error('clock read');
      },
    });
    map.set('a', 1);
    expect(map.get('a')).toBe(1);
  });

  it('reads Date.now at each call by default, so a faked clock applies', () => {
    const map = new BoundedMap<string, number>({ maxEntries: 2 });
    const real = Date.now;
    try {
      Date.now = () => 1_000;
      map.set('a', 1, 2_000);
      expect(map.get('a')).toBe(1);
      Date.now = () => 2_000;
      expect(map.get('a')).toBeUndefined();
    } finally {
      Date.now = real;
    }
  });
});

describe('BoundedMap: eviction at scale', () => {
  it('evicts in order across many evictions and the rehashes they cause (the kept iterator stays right)', () => {
    const map = new BoundedMap<number, number>({ maxEntries: 1_000, order: 'use' });
    const model = new Map<number, number>(); // a plain Map, evicting by a fresh keys().next()
    let seed = 1;
    const random = (n: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n;
    for (let i = 0; i < 20_000; i++) {
      const key = random(3_000);
      if (random(3) === 0) {
        const value = map.get(key);
        expect(value).toBe(model.get(key));
        if (value !== undefined) {
          model.delete(key);
          model.set(key, value);
        }
      } else {
        map.set(key, i);
        model.delete(key);
        if (model.size >= 1_000) model.delete(model.keys().next().value!);
        model.set(key, i);
      }
    }
    expect([...map.keys()]).toEqual([...model.keys()]);
  });
});

type Op =
  | { kind: 'set'; key: number; weight: number; ttl: number | undefined }
  | { kind: 'get'; key: number }
  | { kind: 'delete'; key: number }
  | { kind: 'clear' }
  | { kind: 'tick'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('set' as const), key: fc.nat(7), weight: fc.nat(6), ttl: fc.option(fc.integer({ min: -2, max: 5 }), { nil: undefined, freq: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), key: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.nat(3) }) },
);

describe('BoundedMap: properties', () => {
  it('never holds more entries or weight than its bounds, and holds what a plain model of its rules holds, in order', () => {
    fc.assert(
      fc.property(
        fc.record({
          maxEntries: fc.integer({ min: 1, max: 5 }),
          maxWeight: fc.option(fc.integer({ min: 0, max: 15 }), { nil: undefined }),
          maxEntryWeight: fc.option(fc.nat(10), { nil: undefined }),
          order: fc.constantFrom('insertion' as const, 'use' as const),
          whenFull: fc.constantFrom('evict-oldest' as const, 'clear' as const),
        }),
        fc.array(op, { maxLength: 80 }),
        (options, ops) => {
          const clock = { now: 0 };
          const map = new BoundedMap<number, string>({ ...options, weigh: (_, value) => value.length, now: () => clock.now });
          // The rules read plainly: an array, oldest first.
          let model: { key: number; value: string; expiresAt: number }[] = [];
          const maxWeight = options.maxWeight ?? Infinity;
          const maxEntryWeight = Math.min(options.maxEntryWeight ?? Infinity, maxWeight);
          const modelWeight = () => model.reduce((sum, entry) => sum + entry.value.length, 0);
          for (const step of ops) {
            if (step.kind === 'set') {
              const value = 'w'.repeat(step.weight);
              const expiresAt = step.ttl === undefined ? Infinity : clock.now + step.ttl;
              model = model.filter((entry) => entry.key !== step.key);
              const keep = expiresAt > clock.now && step.weight <= maxEntryWeight;
              if (keep && (model.length >= options.maxEntries || modelWeight() + step.weight > maxWeight)) {
                if (options.whenFull === 'clear') model = [];
                while (model.length > 0 && (model.length >= options.maxEntries || modelWeight() + step.weight > maxWeight)) model.shift();
              }
              if (keep) model.push({ key: step.key, value, expiresAt });
              expect(map.set(step.key, value, expiresAt)).toBe(keep);
            } else if (step.kind === 'get') {
              const at = model.findIndex((entry) => entry.key === step.key);
              let expected: string | undefined;
              if (at !== -1 && model[at]!.expiresAt <= clock.now) model.splice(at, 1);
              else if (at !== -1) {
                expected = model[at]!.value;
                if (options.order === 'use') model.push(...model.splice(at, 1));
              }
              expect(map.get(step.key)).toBe(expected);
            } else if (step.kind === 'delete') {
              const before = model.length;
              model = model.filter((entry) => entry.key !== step.key);
              expect(map.delete(step.key)).toBe(model.length < before);
            } else if (step.kind === 'clear') {
              model = [];
              map.clear();
            } else {
              clock.now += step.ms;
            }
            expect(map.size).toBeLessThanOrEqual(options.maxEntries);
            expect(map.weight).toBeLessThanOrEqual(maxWeight);
            expect([...map.keys()]).toEqual(model.map((entry) => entry.key));
            expect(map.weight).toBe(modelWeight());
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
