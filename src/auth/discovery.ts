import { isHttpsOrLoopback } from '../config/urls.js';
import { MAX_IDP_ANSWER_BYTES, readBoundedJson } from './bounded-body.js';

/**
 * Where an issuer's metadata may live, in the order tried: RFC 8414 §3.1 path-inserted
 * `oauth-authorization-server`, OpenID Connect Discovery 1.0 §4 appended `openid-configuration`,
 * and the path-inserted OIDC form some providers use (the same order as the MCP authorization
 * spec 2025-11-25 §Authorization Server Metadata Discovery asks of clients).
 */
export function metadataUrls(issuer: string): URL[] {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  const at = (p: string) => new URL(p, url.origin);
  if (path === '') {
    return [at('/.well-known/oauth-authorization-server'), at('/.well-known/openid-configuration')];
  }
  return [
    at(`/.well-known/oauth-authorization-server${path}`),
    at(`/.well-known/openid-configuration${path}`),
    at(`${path}/.well-known/openid-configuration`),
  ];
}

export interface IssuerMetadata {
  readonly issuer: string;
  readonly jwks_uri: string;
}

export type FetchLike = (url: URL, init: { signal: AbortSignal; headers: Record<string, string>; redirect?: 'manual' | 'error' | 'follow' }) => Promise<Response>;

/** An endpoint found in metadata that tokens or secrets will be sent to: https, or http on loopback. */
export function requireSafeEndpoint(endpoint: string, name: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new Error(`${name} '${endpoint}' is not a URL`);
  }
  if (!isHttpsOrLoopback(url)) throw new Error(`${name} '${endpoint}' must be https (plain http only on loopback)`);
  return endpoint;
}

/**
 * An endpoint the issuer's metadata names (RFC 8414 §2), looked up on first use and kept; a
 * failed look-up is forgotten, so the next call tries again. Tokens and the gateway's secrets go
 * there: https only (plain http on loopback, for development).
 */
export function discoveredEndpoint(issuer: string, field: 'introspection_endpoint' | 'token_endpoint', timeoutMs: number): () => Promise<string> {
  let endpoint: Promise<string> | undefined;
  return () => {
    endpoint ??= fetchIssuerMetadata(issuer, timeoutMs).then(({ url, document }) => {
      const named = document[field];
      if (typeof named !== 'string') throw new Error(`metadata at ${url.href} has no ${field}`);
      return requireSafeEndpoint(named, field);
    });
    return endpoint.catch((error: Error) => {
      endpoint = undefined;
      throw error;
    });
  };
}

export interface FetchedMetadata {
  /** Where the document was found. */
  readonly url: URL;
  readonly document: Readonly<Record<string, unknown>>;
}

/**
 * Fetches the first metadata document that answers, and checks RFC 8414 §3.3: the `issuer` in
 * the document is identical to the one configured (else a different server could pose as it).
 */
export async function fetchIssuerMetadata(issuer: string, timeoutMs: number, fetchFn: FetchLike = fetch): Promise<FetchedMetadata> {
  const failures: string[] = [];
  for (const url of metadataUrls(issuer)) {
    let response: Response;
    try {
      response = await fetchFn(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' }, redirect: 'manual' });
    } catch (error) {
      failures.push(`${url.href}: ${(error as Error).message}`);
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      failures.push(`${url.href}: HTTP ${response.status}`);
      continue;
    }
    const document = (await readBoundedJson(response, MAX_IDP_ANSWER_BYTES).catch(() => undefined)) as Record<string, unknown> | null | undefined;
    // A catch-all HTML page at one well-known URL is not a verdict: try the next form.
    if (document === null || document === undefined || typeof document !== 'object' || Array.isArray(document)) {
      failures.push(`${url.href}: not a JSON object`);
      continue;
    }
    if (document.issuer !== issuer) throw new Error(`metadata at ${url.href} names issuer '${String(document.issuer)}', expected '${issuer}'`);
    return { url, document };
  }
  throw new Error(`no authorization server metadata for ${issuer} (${failures.join('; ')})`);
}

/** The metadata the key set needs: where the issuer publishes its keys. */
export async function discoverIssuerMetadata(issuer: string, timeoutMs: number, fetchFn: FetchLike = fetch): Promise<IssuerMetadata> {
  const { url, document } = await fetchIssuerMetadata(issuer, timeoutMs, fetchFn);
  if (typeof document.jwks_uri !== 'string') throw new Error(`metadata at ${url.href} has no jwks_uri`);
  return { issuer, jwks_uri: requireSafeEndpoint(document.jwks_uri, 'jwks_uri') };
}
