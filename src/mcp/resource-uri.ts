/**
 * Which resource URIs the gateway decides on. A policy matches the URI as written, but the
 * upstream acts on the URI as it parses it: the MCP SDKs parse with the WHATWG URL parser
 * (`note://private/..` is `note://private` to them), and a file-backed server may decode
 * percent-escapes or drop the query. A spelling that one reader maps onto another URI would let
 * an allow glob admit a denied resource, so the gateway accepts a resource URI only in the one
 * form every reader agrees on, and refuses the rest (never normalises and forwards: the upstream
 * gets the client's bytes).
 *
 * The normal form (RFC 3986 §6.2.2 syntax-based normalisation, and the WHATWG URL Standard's
 * serialisation, which MCP's resources use):
 * - an absolute URI with a lower-case scheme (RFC 3986 §3.1), visible ASCII only: no white space,
 *   control characters or raw non-ASCII (RFC 3986 §2), and no backslash (WHATWG reads it as `/`
 *   in special schemes);
 * - the WHATWG parser serialises it unchanged (no dot segments, default port, upper-case host
 *   of a special scheme, IPv4 shorthand such as `0x7f.1`, empty port);
 * - no dot segment, `.` or `..`, anywhere in the path or the query, raw or percent-encoded
 *   (RFC 3986 §5.2.4 removes them; WHATWG does not in opaque paths such as `note:a/../b`; and a
 *   reader that does not split off the query resolves them there: the SDK's template
 *   `file:///{+path}` reads `file:///pub/x?/../../etc` as the path `pub/x?/../../etc`);
 * - no percent-encoded control character or space, and nothing encoded twice (`%2520`): a
 *   server that decodes before it parses reads what the raw checks never saw;
 * - no percent-encoded unreserved character, `/` or `\` (RFC 3986 §6.2.2.2 decodes the first;
 *   a server that decodes once would read the others as separators);
 * - no user information (RFC 3986 §3.2.1: a server may ignore it and act on the host alone),
 *   no upper-case letter in the host (§6.2.2.1), and no fragment (§3.5: it is never sent to a
 *   server, so a server may ignore it).
 *
 * A query is allowed, but the resource is also decided without it (see resourceReadings): a
 * server may ignore a query it does not use.
 */

/** Why `uri` is not a resource URI the gateway can decide on, or undefined when it is. */
export function resourceUriProblem(uri: string): string | undefined {
  const problem = textProblem(uri);
  if (problem) return problem;
  if (!SCHEME.test(uri)) return 'is not an absolute URI with a lower-case scheme';
  let href: string;
  try {
    href = new URL(uri).href;
  } catch {
    return 'is not a valid URI';
  }
  if (href !== uri) return 'is not in normal form';
  return structureProblem(uri, false);
}

/**
 * The same rules for a URI template (RFC 6570) a client names in `completion/complete` or a
 * server lists in `resources/templates/list`: its `{…}` expressions are not URI characters, so
 * the WHATWG check is left out; everything that does not depend on parsing still applies.
 */
export function resourceTemplateProblem(template: string): string | undefined {
  return textProblem(template) ?? structureProblem(template, true);
}

/**
 * The URIs a resource request may act on: the URI itself and, when it has a query, the URI
 * without it. A policy decides on every reading, and the most restrictive answer wins.
 */
export function resourceReadings(uri: string): readonly string[] {
  const query = uri.indexOf('?');
  return query === -1 ? [uri] : [uri, uri.slice(0, query)];
}

const SCHEME = /^[a-z][a-z0-9+.-]*:/;
/** Percent-escapes of ALPHA, DIGIT, `-`, `.`, `_`, `~` (RFC 3986 §2.3), `/` and `\`. */
const ENCODED_UNRESERVED_OR_SEPARATOR = /%(?:[46][1-9a-fA-F]|[57][0-9aA]|3[0-9]|2[dDeEfF]|5[cCfF]|7[eE])/;

function textProblem(text: string): string | undefined {
  if (text.length === 0) return 'is empty';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code <= 0x20 || code >= 0x7f) return 'holds white space, control or non-ASCII characters';
    if (code === 0x5c) return 'holds a backslash';
  }
  return undefined;
}

/**
 * Percent-escapes of a control character or space (a server that decodes before it parses sees
 * white space the raw check never did), and of `%` itself followed by two hex digits (a double
 * encoding, `%252e`: what it means depends on how often a server decodes).
 */
const ENCODED_CONTROL_OR_DOUBLE = /%(?:[01][0-9a-fA-F]|20|7[fF]|25[0-9a-fA-F]{2})/;

function structureProblem(uri: string, template: boolean): string | undefined {
  if (ENCODED_UNRESERVED_OR_SEPARATOR.test(uri)) return 'percent-encodes an unreserved character or a separator';
  if (ENCODED_CONTROL_OR_DOUBLE.test(uri)) return 'percent-encodes a control character or space, or is encoded twice';
  if (uri.includes('#')) return 'has a fragment';
  const query = uri.indexOf('?');
  const beforeQuery = query === -1 ? uri : uri.slice(0, query);
  const afterScheme = beforeQuery.slice(beforeQuery.indexOf(':') + 1);
  let path = afterScheme;
  if (afterScheme.startsWith('//')) {
    const end = afterScheme.indexOf('/', 2);
    const authority = afterScheme.slice(2, end === -1 ? afterScheme.length : end);
    if (authority.includes('@')) return 'names user information';
    // In a template, a host may be an expression such as `{Host}`: only its literal part counts.
    const host = template ? authority.replace(/\{[^}]*\}/g, '') : authority;
    if (host !== host.toLowerCase()) return 'has upper-case letters in its host';
    path = end === -1 ? '' : afterScheme.slice(end);
  }
  // The query too: to a reader that takes it for part of the path, its `/..` steps out.
  const pathAndQuery = query === -1 ? path : path + uri.slice(query);
  for (const segment of pathAndQuery.split('/')) if (segment === '.' || segment === '..') return 'has a dot segment';
  return undefined;
}
