import { isIPv4, isIPv6 } from 'node:net';

/**
 * Whether the authorization server may connect to an address to fetch a Client ID Metadata
 * Document (draft-ietf-oauth-client-id-metadata-document §6.5 "Server-Side Request Forgery"; MCP
 * authorization 2025-11-25 §Client ID Metadata Documents, security). Only public unicast is
 * allowed: never loopback, private (RFC 1918), carrier-grade NAT (RFC 6598), link-local,
 * unique-local (RFC 4193), multicast, unspecified, documentation or reserved space. IPv6 forms
 * that carry an IPv4 address (v4-mapped, v4-compatible, NAT64, 6to4) are judged by that address;
 * IPv6 outside global unicast (2000::/3) is refused whole. Inputs are what the resolver returns
 * or a URL's host after WHATWG parsing (which already turns `127.1` or `0x7f000001` into
 * `127.0.0.1`); anything that is not an IP address is refused.
 */
export function isPublicAddress(address: string): boolean {
  const bare = address.replace(/^\[(.*)\]$/, '$1');
  if (isIPv4(bare)) return isPublicV4(v4Number(bare));
  if (isIPv6(bare)) return isPublicV6(v6Groups(bare));
  return false;
}

/** [first address, prefix length] of every IPv4 range that is not public unicast (RFC 6890). */
const V4_BLOCKED: readonly [string, number][] = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // RFC 6598 carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255
];

const V4_RANGES = V4_BLOCKED.map(([first, bits]) => ({ base: v4Number(first), mask: bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0 }));

function isPublicV4(value: number): boolean {
  return !V4_RANGES.some(({ base, mask }) => ((value & mask) >>> 0) === base);
}

function v4Number(dotted: string): number {
  return dotted.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

function isPublicV6(g: readonly number[]): boolean {
  const embeddedV4 = (g[6]! << 16 | g[7]!) >>> 0;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (v4-mapped) reaches the IPv4 address, which decides; the rest of ::/80 (::,
  // ::1, the deprecated v4-compatible ::a.b.c.d) is never public.
  if (zeros(0, 5)) return g[5] === 0xffff && isPublicV4(embeddedV4);
  // 64:ff9b::/96 NAT64 (RFC 6052) reaches the embedded IPv4 address.
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return isPublicV4(embeddedV4);
  // 2002::/16 6to4 (RFC 3056) carries an IPv4 address in bits 16-47.
  if (g[0] === 0x2002) return isPublicV4((g[1]! << 16 | g[2]!) >>> 0);
  // Global unicast only: this leaves out ::1, ::, fc00::/7, fe80::/10, fec0::/10, ff00::/8, 100::/64 and 64:ff9b:1::/48.
  if ((g[0]! & 0xe000) !== 0x2000) return false;
  // 2001::/23 IETF protocol assignments (Teredo 2001::/32 among them) and 2001:db8::/32 documentation.
  if (g[0] === 0x2001 && (g[1]! < 0x200 || g[1] === 0xdb8)) return false;
  // 3fff::/20 documentation (RFC 9637).
  if (g[0] === 0x3fff && g[1]! < 0x1000) return false;
  return true;
}

/** The eight 16-bit groups of an IPv6 address (with `::` expanded and a dotted IPv4 tail read). */
function v6Groups(address: string): number[] {
  let text = address.toLowerCase().replace(/%.*$/, '');
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const v4 = v4Number(tail[1]!);
    text = `${text.slice(0, tail.index)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const fill = rest === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((part) => parseInt(part, 16));
}
