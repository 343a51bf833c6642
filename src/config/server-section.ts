import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { BlockList, isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { importPKCS8 } from 'jose';
import { dirname, resolve } from 'node:path';
import { durationOr, parseDuration } from './duration.js';
import type { ConfigProblem } from './problems.js';
import { DEFAULTS, type IdentityTokenConfig, type ServerConfig } from './types.js';
import type { YamlSource } from './yaml-source.js';

/** The listener-level sections as written (after schema validation). */
export interface ServerDocument {
  tls?: { certFile: string; keyFile: string };
  admin?: { listen: { host?: string; port: number } };
  trustedProxies?: string[];
  limits?: { maxBodyBytes?: number; maxHeaderBytes?: number; maxHeaders?: number; maxConnections?: number };
  timeouts?: { headers?: string; request?: string; idle?: string; upstreamConnect?: string; upstreamResponse?: string; issuerDiscovery?: string };
  shutdown?: { drainDelay?: string; gracePeriod?: string };
  identityToken?: { signingKeyFile?: string; algorithm?: 'ES256' | 'RS256'; ttl?: string };
  listen?: { host?: string; port?: number };
}

/** Parses `10.0.0.0/8`, `::1` or `fd00::/8` into a BlockList entry; undefined when malformed. */
export function addProxy(list: BlockList, entry: string): boolean {
  const [address, prefix, extra] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || extra !== undefined) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (prefix === undefined) {
    list.addAddress(address!, type);
    return true;
  }
  const bits = /^[0-9]{1,3}$/.test(prefix) ? Number(prefix) : NaN;
  if (!(bits >= 0 && bits <= (family === 4 ? 32 : 128))) return false;
  list.addSubnet(address!, bits, type);
  return true;
}

/** Checks what the schema cannot say, and reads TLS and signing-key files now (errors at their line). */
export async function loadServer(
  source: YamlSource,
  configFile: string,
  doc: ServerDocument,
  problems: ConfigProblem[],
): Promise<{ server: ServerConfig; identityToken: IdentityTokenConfig } | undefined> {
  const before = problems.length;
  const probe = new BlockList();
  doc.trustedProxies?.forEach((entry, index) => {
    if (!addProxy(probe, entry)) problems.push(source.problemAt(['trustedProxies', index], `trustedProxies.${index} '${entry}' is not an IP address or CIDR range`));
  });
  for (const key of ['headers', 'request', 'idle', 'upstreamConnect'] as const) {
    const value = doc.timeouts?.[key];
    if (value !== undefined && parseDuration(value) === 0) problems.push(source.problemAt(['timeouts', key], `timeouts.${key} must be longer than 0`));
  }
  const gracePeriod = doc.shutdown?.gracePeriod;
  if (gracePeriod !== undefined && parseDuration(gracePeriod) === 0) problems.push(source.problemAt(['shutdown', 'gracePeriod'], 'shutdown.gracePeriod must be longer than 0'));
  const headersMs = durationOr(doc.timeouts?.headers, DEFAULTS.headersTimeoutMs);
  const requestMs = durationOr(doc.timeouts?.request, DEFAULTS.requestTimeoutMs);
  // Node requires headersTimeout <= requestTimeout; say so at the line rather than crash at listen.
  if (headersMs > requestMs) problems.push(source.problemAt(['timeouts', doc.timeouts?.headers ? 'headers' : 'request'], 'timeouts.headers must not be longer than timeouts.request'));
  const admin = doc.admin?.listen;
  if (admin && doc.listen?.port !== undefined && admin.port !== 0 && admin.port === doc.listen.port && (admin.host ?? DEFAULTS.adminHost) === (doc.listen.host ?? DEFAULTS.host)) {
    problems.push(source.problemAt(['admin', 'listen', 'port'], 'admin.listen must differ from listen'));
  }
  const read = async (path: (string | number)[], file: string | undefined, what: string): Promise<string | undefined> => {
    if (file === undefined) return undefined;
    try {
      return await readFile(resolve(dirname(configFile), file), 'utf8');
    } catch (error) {
      problems.push(source.problemAt(path, `cannot read ${what} '${file}': ${(error as Error).message}`));
      return undefined;
    }
  };
  const [cert, key, signingKey] = await Promise.all([
    read(['tls', 'certFile'], doc.tls?.certFile, 'TLS certificate'),
    read(['tls', 'keyFile'], doc.tls?.keyFile, 'TLS key'),
    read(['identityToken', 'signingKeyFile'], doc.identityToken?.signingKeyFile, 'identity signing key'),
  ]);
  if (cert !== undefined && key !== undefined) {
    try {
      createSecureContext({ cert, key });
    } catch (error) {
      problems.push(source.problemAt(['tls'], `tls.certFile and tls.keyFile do not make a usable pair: ${(error as Error).message}`));
    }
  }
  const algorithm = doc.identityToken?.algorithm ?? 'ES256';
  if (signingKey !== undefined) {
    try {
      await importPKCS8(signingKey, algorithm);
      const bits = createPrivateKey(signingKey).asymmetricKeyDetails?.modulusLength;
      if (bits !== undefined && bits < 2048) throw new Error(`an RSA key of ${bits} bits is too weak (2048 at least)`);
    } catch (error) {
      problems.push(source.problemAt(['identityToken', 'signingKeyFile'], `identityToken.signingKeyFile is not a PKCS#8 ${algorithm} key: ${(error as Error).message}`));
    }
  }
  if (problems.length > before) return undefined;
  return {
    server: {
      ...(cert !== undefined && key !== undefined ? { tls: { cert, key } } : {}),
      ...(admin ? { admin: { host: admin.host ?? DEFAULTS.adminHost, port: admin.port } } : {}),
      trustedProxies: doc.trustedProxies ?? [],
      maxHeaderBytes: doc.limits?.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes,
      maxHeaders: doc.limits?.maxHeaders ?? DEFAULTS.maxHeaders,
      maxConnections: doc.limits?.maxConnections ?? DEFAULTS.maxConnections,
      headersTimeoutMs: headersMs,
      requestTimeoutMs: requestMs,
      idleTimeoutMs: durationOr(doc.timeouts?.idle, DEFAULTS.idleTimeoutMs),
      upstreamConnectTimeoutMs: durationOr(doc.timeouts?.upstreamConnect, DEFAULTS.upstreamConnectTimeoutMs),
      drainDelayMs: durationOr(doc.shutdown?.drainDelay, DEFAULTS.drainDelayMs),
      gracePeriodMs: durationOr(gracePeriod, DEFAULTS.gracePeriodMs),
    },
    identityToken: {
      ...(signingKey !== undefined ? { signingKey } : {}),
      algorithm,
      ttlMs: durationOr(doc.identityToken?.ttl, DEFAULTS.identityTokenTtlMs),
    },
  };
}
