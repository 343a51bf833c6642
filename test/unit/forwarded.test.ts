import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ForwardedHeaders, type ClientOrigin } from '../../src/http/forwarded.js';

/**
 * X-Forwarded-For, -Proto and -Host are believed only from configured trusted proxies. A request
 * is just a peer address and headers here, as Node's IncomingMessage carries them.
 */
const request = (remoteAddress: string | undefined, headers: IncomingHttpHeaders = {}) => ({
  socket: { remoteAddress },
  headers: { host: 'gateway.internal:8080', ...headers },
});

const SPOOFED = {
  'x-forwarded-for': '198.51.100.1, 10.0.0.7',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'evil.example',
};

describe('ForwardedHeaders.originOf', () => {
  const forwarded = new ForwardedHeaders(['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', '192.0.2.1'], false);

  describe('from a peer that is not a trusted proxy', () => {
    it.each(['203.0.113.9', '::ffff:203.0.113.9', '2001:db8::9', '11.0.0.1', '127.0.0.2', '::2', 'fe00::1'])('ignores every X-Forwarded-* header (%s)', (peer) => {
      const plain = peer.startsWith('::ffff:') ? peer.slice(7) : peer;
      expect(forwarded.originOf(request(peer, SPOOFED))).toEqual<ClientOrigin>({
        address: plain,
        forwardedFor: plain,
        proto: 'http',
        host: 'gateway.internal:8080',
        viaTrustedProxy: false,
      });
    });

    it('says https when the gateway itself terminates TLS', () => {
      const tls = new ForwardedHeaders(['10.0.0.0/8'], true);
      expect(tls.originOf(request('203.0.113.9', { 'x-forwarded-proto': 'http' })).proto).toBe('https');
      expect(tls.originOf(request('10.1.1.1', { 'x-forwarded-proto': 'http' })).proto).toBe('http');
      expect(tls.originOf(request('10.1.1.1')).proto).toBe('https');
    });

    it('believes nobody when no proxy is configured', () => {
      const none = new ForwardedHeaders([], false);
      for (const peer of ['127.0.0.1', '10.0.0.1', '::1']) {
        expect(none.originOf(request(peer, SPOOFED))).toEqual({ address: peer, forwardedFor: peer, proto: 'http', host: 'gateway.internal:8080', viaTrustedProxy: false });
      }
    });

    it('passes on only a well-formed Host of its own', () => {
      expect(forwarded.originOf(request('203.0.113.9', { host: 'bad host' })).host).toBeUndefined();
      expect(forwarded.originOf(request('203.0.113.9', { host: 'a.example/path' })).host).toBeUndefined();
      expect(forwarded.originOf(request('203.0.113.9', { host: undefined })).host).toBeUndefined();
      expect(forwarded.originOf(request('203.0.113.9', { host: '[::1]:8080' })).host).toBe('[::1]:8080');
    });

    it('has no address when the socket has none', () => {
      expect(forwarded.originOf(request(undefined, SPOOFED))).toEqual({ address: undefined, forwardedFor: undefined, proto: 'http', host: 'gateway.internal:8080', viaTrustedProxy: false });
    });
  });

  describe('from a trusted proxy', () => {
    it('walks the chain from the right past trusted hops to the client', () => {
      const origin = forwarded.originOf(request('10.0.0.2', { 'x-forwarded-for': '203.0.113.7, 10.0.0.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'mcp.example.com' }));
      expect(origin).toEqual<ClientOrigin>({
        address: '203.0.113.7',
        forwardedFor: '203.0.113.7, 10.0.0.1, 10.0.0.2',
        proto: 'https',
        host: 'mcp.example.com',
        viaTrustedProxy: true,
      });
    });

    it('stops at the first untrusted hop: what it claimed about others is dropped', () => {
      const origin = forwarded.originOf(request('127.0.0.1', { 'x-forwarded-for': '10.9.9.9, 198.51.100.1, 203.0.113.7, 10.0.0.1' }));
      expect(origin.address).toBe('203.0.113.7');
      expect(origin.forwardedFor).toBe('203.0.113.7, 10.0.0.1, 127.0.0.1');
    });

    it('takes the leftmost hop when every hop is trusted', () => {
      const origin = forwarded.originOf(request('10.0.0.3', { 'x-forwarded-for': '10.0.0.1, 10.0.0.2' }));
      expect(origin.address).toBe('10.0.0.1');
      expect(origin.forwardedFor).toBe('10.0.0.1, 10.0.0.2, 10.0.0.3');
    });

    it('is the peer itself without X-Forwarded-For', () => {
      expect(forwarded.originOf(request('10.0.0.3'))).toEqual({ address: '10.0.0.3', forwardedFor: '10.0.0.3', proto: 'http', host: 'gateway.internal:8080', viaTrustedProxy: true });
      expect(forwarded.originOf(request('10.0.0.3', { 'x-forwarded-for': '' })).forwardedFor).toBe('10.0.0.3');
    });

    it('skips garbage on the client side of the chain: it never reaches the upstream', () => {
      const origin = forwarded.originOf(request('10.0.0.2', { 'x-forwarded-for': 'unknown, <script>, 1.2.3, 203.0.113.7, 10.0.0.1' }));
      expect(origin.address).toBe('203.0.113.7');
      expect(origin.forwardedFor).toBe('203.0.113.7, 10.0.0.1, 10.0.0.2');
    });

    it('ignores empty entries', () => {
      const origin = forwarded.originOf(request('10.0.0.2', { 'x-forwarded-for': ' , 203.0.113.7,, 10.0.0.1 ,' }));
      expect(origin.address).toBe('203.0.113.7');
      expect(origin.forwardedFor).toBe('203.0.113.7, 10.0.0.1, 10.0.0.2');
    });

    it('stops at an entry a trusted hop reported that is not an address: nothing left of it is believed', () => {
      // Were "unknown" skipped, the client's own 10.9.9.9 and then 198.51.100.66 would be believed.
      const origin = forwarded.originOf(request('10.0.0.2', { 'x-forwarded-for': '198.51.100.66, 10.9.9.9, unknown, 10.0.0.1' }));
      expect(origin.address).toBeUndefined();
      expect(origin.forwardedFor).toBe('10.0.0.1, 10.0.0.2');
      const rightmost = forwarded.originOf(request('10.0.0.2', { 'x-forwarded-for': '198.51.100.66, not-an-ip' }));
      expect(rightmost.address).toBeUndefined();
      expect(rightmost.forwardedFor).toBe('10.0.0.2');
    });

    it('reads addresses written with a port, as some load balancers write them', () => {
      expect(forwarded.originOf(request('10.0.0.2', { 'x-forwarded-for': '10.9.9.9, 203.0.113.7:5555' }))).toMatchObject({ address: '203.0.113.7', forwardedFor: '203.0.113.7, 10.0.0.2' });
      expect(forwarded.originOf(request('10.0.0.2', { 'x-forwarded-for': '[2001:db8::7]:443' }))).toMatchObject({ address: '2001:db8::7', forwardedFor: '2001:db8::7, 10.0.0.2' });
      expect(forwarded.originOf(request('10.0.0.2', { 'x-forwarded-for': '[2001:db8::7]' }))).toMatchObject({ address: '2001:db8::7' });
      expect(forwarded.originOf(request('10.0.0.2', { 'x-forwarded-for': '[203.0.113.7]:443' })).address).toBeUndefined();
    });

    it('treats IPv4-mapped IPv6 peers and hops as the IPv4 addresses they map', () => {
      const origin = forwarded.originOf(request('::ffff:10.0.0.2', { 'x-forwarded-for': '::ffff:203.0.113.7, ::ffff:10.0.0.1' }));
      expect(origin).toMatchObject({ address: '203.0.113.7', forwardedFor: '203.0.113.7, 10.0.0.1, 10.0.0.2', viaTrustedProxy: true });
      expect(forwarded.originOf(request('::ffff:127.0.0.1', { 'x-forwarded-for': '203.0.113.7' }))).toMatchObject({ address: '203.0.113.7', forwardedFor: '203.0.113.7, 127.0.0.1' });
      expect(forwarded.originOf(request('::FFFF:10.0.0.2', { 'x-forwarded-for': '203.0.113.7' })).viaTrustedProxy).toBe(true);
      // A mapped untrusted address is still untrusted.
      expect(forwarded.originOf(request('::ffff:11.0.0.1', { 'x-forwarded-for': '203.0.113.7' }))).toMatchObject({ address: '11.0.0.1', viaTrustedProxy: false });
    });

    it('matches IPv4 and IPv6 CIDR ranges and single addresses, at their edges', () => {
      const trusted = (peer: string) => forwarded.originOf(request(peer)).viaTrustedProxy;
      expect(['10.0.0.0', '10.255.255.255', '127.0.0.1', '192.0.2.1', '::1', 'fd00::', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'FD12::1'].map(trusted)).toEqual(Array(8).fill(true));
      expect(['9.255.255.255', '11.0.0.0', '127.0.0.2', '192.0.2.2', '::2', 'fc00::1', 'fe00::', '2001:db8::1'].map(trusted)).toEqual(Array(8).fill(false));
      const v6 = new ForwardedHeaders(['2001:db8:1::/48'], false);
      const origin = v6.originOf(request('2001:db8:1:ffff::1', { 'x-forwarded-for': '2001:db8:2::5, 2001:db8:1::9' }));
      expect(origin).toMatchObject({ address: '2001:db8:2::5', forwardedFor: '2001:db8:2::5, 2001:db8:1::9, 2001:db8:1:ffff::1' });
      expect(v6.originOf(request('2001:db8:2::1', { 'x-forwarded-for': '203.0.113.7' })).viaTrustedProxy).toBe(false);
    });

    it('takes X-Forwarded-Proto only as http or https', () => {
      const proto = (value: string) => forwarded.originOf(request('10.0.0.2', { 'x-forwarded-proto': value })).proto;
      expect(proto('https')).toBe('https');
      expect(proto('HTTPS')).toBe('https');
      expect(proto('http')).toBe('http');
      // The nearest proxy's value is the last: a client-sent first value cannot talk over it.
      expect(proto('https, http')).toBe('http');
      expect(proto('http, https')).toBe('https');
      for (const bad of ['ftp', 'javascript', 'https\r\nx: y', 'wss', '']) expect(proto(bad)).toBe('http');
    });

    it('takes X-Forwarded-Host only as a host name or address with an optional port', () => {
      const host = (value: string) => forwarded.originOf(request('10.0.0.2', { 'x-forwarded-host': value })).host;
      for (const good of ['mcp.example.com', 'mcp.example.com:8443', '203.0.113.7', '[2001:db8::1]:443', 'localhost', 'my_host.internal']) expect(host(good)).toBe(good);
      expect(host('evil.example, b.example')).toBe('b.example');
      for (const bad of ['bad host', 'a.example\r\nx-evil: 1', 'a.example\nx', 'a.example/path', 'user@a.example', 'a.example:port', 'a.example:123456', '"a.example"', 'a.example?x', 'zoë.example', `${'a'.repeat(256)}`, '[not-v6]']) {
        expect(host(bad)).toBe('gateway.internal:8080');
      }
    });

    it('joins repeated headers as Node does', () => {
      const origin = forwarded.originOf(request('10.0.0.2', { 'x-forwarded-for': ['198.51.100.1', '203.0.113.7'] }));
      expect(origin.address).toBe('203.0.113.7');
    });
  });
});
