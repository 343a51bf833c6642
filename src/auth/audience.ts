import { comparableHttpUri, expectedComparable, httpScheme } from './http-uri.js';

/**
 * Whether `aud` (a string or an array of them, from a JWT or an introspection answer) names the
 * expected audience. An http(s) URL is compared by the rule of http-uri.ts: scheme and host
 * case-insensitively (MCP authorization §Canonical Server URI: implementations SHOULD accept
 * uppercase scheme and host), the default port dropped, an empty path read as `/`, and nothing
 * else normalized: the path and query must be the same characters, the host is compared as
 * written, and a value with userinfo or a fragment, or outside the RFC 3986 grammar, matches
 * nothing. Any other audience (an Entra application GUID, an `api://` identifier) is compared
 * exactly.
 */
export function audienceIncludes(aud: unknown, expected: string): boolean {
  let wanted: string | undefined;
  if (httpScheme(expected) !== undefined) {
    wanted = expectedComparable(expected);
    // An http(s) audience the rule cannot accept (userinfo, a fragment…) is refused at config
    // load; were one to get here, it would match nothing, not even itself.
    if (wanted === undefined) return false;
  }
  if (typeof aud === 'string') return matches(aud, expected, wanted);
  if (!Array.isArray(aud)) return false;
  for (const value of aud) if (typeof value === 'string' && matches(value, expected, wanted)) return true;
  return false;
}

/** `wanted`: the expected URI's comparable form, undefined for an audience compared exactly. */
function matches(value: string, expected: string, wanted: string | undefined): boolean {
  if (value === expected) return true; // the common case, and for a URI the same spelling is the same URI
  return wanted !== undefined && httpScheme(value) !== undefined && comparableHttpUri(value) === wanted;
}
