import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPublicAddress } from '../../src/authorization-server/ip-ranges.js';

/**
 * The CIMD SSRF guard's address rule, judged the way the fetch sees an address: a client_id
 * URL's host after WHATWG parsing (which turns 127.1, 0x7f000001, 2130706433 or 0177.0.0.1 into
 * 127.0.0.1), or what the resolver returns. Every textual form of a blocked IPv4 address, and
 * every IPv6 form that carries it, must be refused; public addresses in any form allowed.
 */
const hostOf = (form: string) => new URL(`https://${form}/client.json`).hostname;
const allowed = (form: string) => isPublicAddress(hostOf(form));

/** [first, prefix] of the IPv4 ranges that must be refused. */
const BLOCKED_V4: [number, number][] = [
  [0x00000000, 8], [0x0a000000, 8], [0x64400000, 10], [0x7f000000, 8], [0xa9fe0000, 16], [0xac100000, 12],
  [0xc0000000, 24], [0xc0000200, 24], [0xc0586300, 24], [0xc0a80000, 16], [0xc6120000, 15], [0xc6336400, 24],
  [0xcb007100, 24], [0xe0000000, 4], [0xf0000000, 4],
];
const inRange = (value: number, [base, bits]: [number, number]) => (value >>> (32 - bits)) === (base >>> (32 - bits));
const isBlocked = (value: number) => BLOCKED_V4.some((range) => inRange(value, range));

const blockedV4 = fc.constantFrom(...BLOCKED_V4).chain(([base, bits]) => fc.integer({ min: 0, max: 2 ** (32 - bits) - 1 }).map((offset) => (base + offset) >>> 0));
const publicV4 = fc.integer({ min: 0, max: 0xffffffff }).filter((value) => !isBlocked(value));

const octets = (v: number) => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const hex16 = (v: number) => [(v >>> 16).toString(16), (v & 0xffff).toString(16)];

/** Every spelling of one IPv4 address a URL host (or an IPv6 literal carrying it) can take. */
function spellings(v: number): string[] {
  const [a, b, c, d] = octets(v) as [number, number, number, number];
  const [high, low] = hex16(v) as [string, string];
  return [
    `${a}.${b}.${c}.${d}`,
    `${a}.${b}.${(c << 8) | d}`, // a.b.cd
    `${a}.${(b << 16) | (c << 8) | d}`, // 127.1 style
    String(v), // one decimal number
    `0x${v.toString(16)}`, // one hex number
    `0${a.toString(8)}.0${b.toString(8)}.0${c.toString(8)}.0${d.toString(8)}`, // octal parts
    `0x${a.toString(16)}.${b}.${c}.${d}`,
    `[::ffff:${a}.${b}.${c}.${d}]`, // IPv4-mapped
    `[::ffff:${high}:${low}]`,
    `[64:ff9b::${a}.${b}.${c}.${d}]`, // NAT64
    `[2002:${high}:${low}::1]`, // 6to4
  ];
}

describe('which addresses a metadata document may be fetched from', () => {
  it('every spelling of a loopback, private, CGNAT, link-local or reserved IPv4 address is refused', () => {
    fc.assert(
      fc.property(blockedV4, (value) => {
        for (const form of spellings(value)) expect(allowed(form), form).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('every spelling of a public IPv4 address is allowed', () => {
    fc.assert(
      fc.property(publicV4, (value) => {
        for (const form of spellings(value)) expect(allowed(form), form).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('the named examples: 127.1, 0x7f000001, [::1], ::ffff:10.0.0.1, metadata services', () => {
    for (const form of ['127.1', '0x7f000001', '2130706433', '[::1]', '[::]', '0.0.0.0', '[::ffff:10.0.0.1]', '169.254.169.254', '100.64.0.1', '[fd00:ec2::254]']) {
      expect(URL.canParse(`https://${form}/x`) ? allowed(form) : false, form).toBe(false);
    }
  });

  const groups = (count: number) => fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: count, maxLength: count }).map((g) => g.map((x) => x.toString(16)).join(':'));
  const v6In = (prefix: number, bits: number) =>
    fc.tuple(fc.integer({ min: 0, max: 2 ** (16 - bits) - 1 }), groups(7)).map(([low, rest]) => `[${((prefix & (0xffff << (16 - bits))) | low).toString(16)}:${rest}]`);

  it.each([
    ['fe80::/10 link-local', v6In(0xfe80, 10)],
    ['fc00::/7 unique-local', v6In(0xfc00, 7)],
    ['ff00::/8 multicast', v6In(0xff00, 8)],
    ['fec0::/10 site-local', v6In(0xfec0, 10)],
    ['2001:db8::/32 documentation', groups(6).map((rest) => `[2001:db8:${rest}]`)],
  ])('IPv6 %s is refused in any form', (_, addresses) => {
    fc.assert(
      fc.property(addresses, (form) => {
        expect(allowed(form), form).toBe(false);
      }),
    );
  });

  it('global unicast IPv6 is allowed', () => {
    for (const form of ['[2606:4700:4700::1111]', '[2a00:1450:4001:82a::200e]', '[2001:4860:4860::8888]']) expect(allowed(form), form).toBe(true);
  });

  it('what is no IP address at all is refused (names are resolved first, never judged as text)', () => {
    for (const text of ['example.com', '', 'not an address', '1.2.3', '::g']) expect(isPublicAddress(text), text).toBe(false);
  });
});
