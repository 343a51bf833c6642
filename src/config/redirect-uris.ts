import { isLoopbackHost, isUrl } from './urls.js';

/** RFC 7591 §2 `application_type` (from OpenID Connect Dynamic Client Registration §2). */
export type ApplicationType = 'web' | 'native';

/**
 * Why a redirect URI may not be registered, or undefined when it may. Shared by the config loader
 * (authorizationServer.clients) and the facade (dynamic registration, metadata documents), so a
 * client is held to one rule however it was registered:
 * - an absolute URI without a fragment (RFC 6749 §3.1.2);
 * - https, or http only on a loopback host (OAuth 2.1 §2.3.1, RFC 8252 §7.3; MCP authorization
 *   §Communication Security: "localhost URLs or HTTPS URLs"), never with userinfo;
 * - for native apps also a private-use scheme in reverse domain name form (RFC 8252 §7.1), which
 *   leaves out `javascript:`, `data:`, `file:` and every other scheme without a dot.
 */
export function redirectUriProblem(uri: string, applicationType: ApplicationType = 'web'): string | undefined {
  if (!isUrl(uri)) return 'is not an absolute URI';
  const url = new URL(uri);
  if (url.hash !== '' || uri.includes('#')) return 'must not have a fragment (RFC 6749 §3.1.2)';
  if (url.username !== '' || url.password !== '') return 'must not carry userinfo';
  if (url.protocol === 'https:') return url.hostname === '' ? 'has no host' : undefined;
  if (url.protocol === 'http:') return isLoopbackHost(url.hostname) ? undefined : 'must use https (plain http only on a loopback host)';
  const scheme = url.protocol.slice(0, -1);
  if (applicationType !== 'native') return `uses the scheme '${scheme}', which only native clients may register`;
  // RFC 8252 §7.1: a private-use scheme is a reverse domain name (com.example.app).
  if (!/^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$/.test(scheme)) return `uses the scheme '${scheme}': a native client's private-use scheme is a reverse domain name such as com.example.app`;
  return undefined;
}
