import type { IncomingHttpHeaders } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { addProxy } from '../config/server-section.js';
import type { ClientOrigin } from '../observability/request-record.js';

export type { ClientOrigin };

/** The parts of a request the origin is read from (an IncomingMessage has them). */
export interface ForwardedRequest {
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string | undefined };
}

/** IPv4-mapped IPv6 (::ffff:10.0.0.1) is the IPv4 peer it maps. */
function plainAddress(address: string | undefined): string | undefined {
  return address !== undefined && /^::ffff:/i.test(address) && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * One X-Forwarded-For entry as an address: a bare IPv4 or IPv6 address, or one written with a
 * port (`203.0.113.7:5555`, `[2001:db8::1]:443`, as some load balancers do). Anything else
 * (`unknown`, a host name, an obfuscated RFC 7239 identifier) is undefined.
 */
function hopAddress(entry: string): string | undefined {
  if (isIP(entry) !== 0) return plainAddress(entry);
  const bracketed = /^\[([^\]]+)\](?::[0-9]{1,5})?$/.exec(entry);
  if (bracketed && isIP(bracketed[1]!) === 6) return plainAddress(bracketed[1]);
  const withPort = /^([0-9.]+):[0-9]{1,5}$/.exec(entry);
  if (withPort && isIP(withPort[1]!) === 4) return withPort[1];
  return undefined;
}

/** A host name, IPv4 address or bracketed IPv6 address, with an optional port: nothing else. */
const HOST = /^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

function validHost(value: string | undefined): string | undefined {
  return value !== undefined && value.length <= 255 && HOST.test(value) ? value : undefined;
}

/**
 * X-Forwarded-For, -Proto and -Host are believed only from configured trusted proxies;
 * from anyone else they are ignored, so a client cannot claim another address or scheme.
 * The For chain is walked from the right, past trusted hops, to the first untrusted address.
 * An entry that is not an address stops the walk: a trusted proxy vouched for nothing usable,
 * and whatever lies left of it came from an unknown sender.
 */
export class ForwardedHeaders {
  private readonly trusted = new BlockList();
  private readonly any: boolean;

  constructor(trustedProxies: readonly string[], private readonly tls: boolean) {
    for (const entry of trustedProxies) addProxy(this.trusted, entry);
    this.any = trustedProxies.length > 0;
  }

  private isTrusted(address: string | undefined): boolean {
    if (!this.any || address === undefined) return false;
    const family = isIP(address);
    return family !== 0 && this.trusted.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }

  originOf(req: ForwardedRequest): ClientOrigin {
    const peer = plainAddress(req.socket.remoteAddress);
    const ownProto = this.tls ? 'https' : 'http';
    const ownHost = validHost(typeof req.headers.host === 'string' ? req.headers.host : undefined);
    if (!this.isTrusted(peer)) return { address: peer, forwardedFor: peer, proto: ownProto, host: ownHost, viaTrustedProxy: false };
    const entries = listValues(req.headers['x-forwarded-for']);
    // Believed hops, left to right, ending with the one next to the peer.
    const believed: string[] = [];
    let address: string | undefined = peer;
    for (let i = entries.length - 1; i >= 0; i--) {
      const hop = hopAddress(entries[i]!);
      if (hop === undefined) {
        address = undefined;
        break;
      }
      believed.unshift(hop);
      address = hop;
      if (!this.isTrusted(hop)) break;
    }
    // The nearest proxy's value is the last one: a proxy that appends cannot be talked over by
    // a client-sent first value.
    const proto = listValues(req.headers['x-forwarded-proto']).at(-1)?.toLowerCase();
    const host = validHost(listValues(req.headers['x-forwarded-host']).at(-1));
    return {
      address,
      forwardedFor: [...believed, peer].join(', '),
      proto: proto === 'https' || proto === 'http' ? proto : ownProto,
      host: host ?? ownHost,
      viaTrustedProxy: true,
    };
  }
}

/** A comma-separated header's entries, trimmed, empty ones left out (Node joins repeats with ", "). */
function listValues(value: string | string[] | undefined): string[] {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
}
