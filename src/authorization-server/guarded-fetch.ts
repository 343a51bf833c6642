import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { isPublicAddress } from './ip-ranges.js';

/** Why a guarded fetch gave up, from a closed set (logs and tests speak the same words). */
export type FetchRefusalReason = 'address' | 'redirect' | 'status' | 'size' | 'timeout' | 'network';

export class FetchRefused extends Error {
  override readonly name = 'FetchRefused';
  constructor(readonly reason: FetchRefusalReason, message: string) {
    super(message);
  }
}

export interface GuardedFetchOptions {
  /** Development only: loopback, private and link-local addresses are allowed too. */
  readonly allowPrivateNetworks: boolean;
  /** The whole fetch, name resolution included. */
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** Extra trusted CA certificates (PEM), for a metadata host on a private CA. */
  readonly ca?: string;
  /** Name resolution; tests point a name at an address of their choosing. */
  readonly resolve?: (host: string) => Promise<{ address: string; family: number }[]>;
}

export interface FetchedDocument {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/**
 * A GET that an outside party's URL cannot turn against the gateway's own network (SSRF; CIMD
 * draft §6.5, RFC 9700 §4.16 on server-side fetches): the host's addresses are resolved and
 * checked first, and the connection is made to the address that was checked, never resolved
 * again (no DNS rebinding between check and connect); redirects are not followed; the body is
 * cut at `maxBytes`; the whole fetch gives up after `timeoutMs`. No proxy is used.
 */
export async function guardedGet(url: URL, options: GuardedFetchOptions): Promise<FetchedDocument> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FetchRefused('timeout', `no answer from ${url.host} within ${options.timeoutMs} ms`)), options.timeoutMs);
  });
  const controller = new AbortController();
  try {
    return await Promise.race([fetchPinned(url, options, controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

async function fetchPinned(url: URL, options: GuardedFetchOptions, signal: AbortSignal): Promise<FetchedDocument> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const resolve = options.resolve ?? ((name: string) => dnsLookup(name, { all: true, verbatim: true }));
  const candidates = isIP(host) ? [{ address: host, family: isIP(host) }] : await resolve(host).catch((error: Error) => {
    throw new FetchRefused('network', `cannot resolve ${host}: ${error.message}`);
  });
  const target = candidates.find((candidate) => options.allowPrivateNetworks || isPublicAddress(candidate.address));
  if (!target) throw new FetchRefused('address', `${host} resolves only to loopback, private, link-local or reserved addresses`);
  const pinned: LookupFunction = (_name, lookupOptions, callback) => {
    if ((lookupOptions as { all?: boolean }).all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [target]);
    else callback(null, target.address, target.family);
  };
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<FetchedDocument>((resolvePromise, reject) => {
    const req = request(
      {
        protocol: url.protocol,
        hostname: host,
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { accept: 'application/json', 'user-agent': 'mcp-auth-gateway' },
        lookup: pinned,
        agent: false,
        signal,
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) {
          res.destroy();
          return reject(new FetchRefused('redirect', `${url.href} answered ${status}: redirects are not followed`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) {
            res.destroy();
            reject(new FetchRefused('size', `${url.href} is larger than ${options.maxBytes} bytes`));
          } else chunks.push(chunk);
        });
        res.on('end', () => resolvePromise({ status, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (error) => reject(new FetchRefused('network', error.message)));
      },
    );
    req.on('error', (error) => reject(error instanceof FetchRefused ? error : new FetchRefused('network', `cannot fetch ${url.href}: ${error.message}`)));
    req.end();
  });
}
