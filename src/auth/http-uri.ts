import { isIPv6 } from 'node:net';
import { BoundedMap } from '../cache/bounded-map.js';

/**
 * How the gateway compares http(s) URIs that name it (a token's `aud`, a DPoP proof's `htu`):
 * parsed strictly by the RFC 3986 syntax, never by the WHATWG URL parser (which resolves dot
 * segments, reads `0x7f.1` as 127.0.0.1, and takes userinfo in its stride). Two spellings are
 * the same URI when they differ only in
 *
 * - the case of the scheme and of the host (RFC 3986 §3.1, §3.2.2; RFC 9110 §4.2.3),
 * - the scheme's default port written out (`:80` for http, `:443` for https; RFC 9110 §4.2.3),
 * - an empty path written as `/` (RFC 9110 §4.2.3: for http(s) the two are equivalent).
 *
 * Nothing else is normalized: the path and query must be the same characters (no dot-segment
 * removal, no percent-decoding, percent-encoding hex case kept), the host is compared as written
 * (an IPv4 address in another spelling, `0x7f.1`, `2130706433`, `127.1`, is another host; so is
 * an IPv6 address written another way), and the port as written (`:0443`, an empty `:`, are not
 * the default port). A value with userinfo (`user@host`), a fragment, an IPvFuture or zoned
 * IPv6 literal, or any character outside the RFC 3986 grammar (whitespace, `\`, non-ASCII) is
 * not a URI this rule accepts, so it matches nothing.
 *
 * Linear in the input, without regular expressions: this runs on every token the gateway has
 * not verified before.
 */

const UNRESERVED = 1; // ALPHA DIGIT - . _ ~
const SUB_DELIM = 2; // ! $ & ' ( ) * + , ; =
const PCHAR_EXTRA = 4; // : @ (pchar beyond unreserved, pct-encoded and sub-delims)
const HEX = 8;
const IPV6_CHAR = 16; // HEXDIG : . (inside an IP-literal)

const CLASSES = (() => {
  const table = new Uint8Array(128);
  const mark = (chars: string, bit: number) => {
    for (const char of chars) table[char.charCodeAt(0)]! |= bit;
  };
  const range = (from: string, to: string) => {
    let chars = '';
    for (let code = from.charCodeAt(0); code <= to.charCodeAt(0); code++) chars += String.fromCharCode(code);
    return chars;
  };
  const digits = range('0', '9');
  mark(`${range('A', 'Z')}${range('a', 'z')}${digits}-._~`, UNRESERVED);
  mark("!$&'()*+,;=", SUB_DELIM);
  mark(':@', PCHAR_EXTRA);
  mark(`${digits}${range('A', 'F')}${range('a', 'f')}`, HEX | IPV6_CHAR);
  mark(':.', IPV6_CHAR);
  return table;
})();

const SLASH = 0x2f;
const COLON = 0x3a;
const QUESTION = 0x3f;
const HASH = 0x23;
const PERCENT = 0x25;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

const has = (code: number, bits: number) => code < 128 && (CLASSES[code]! & bits) !== 0;

/** `http://` or `https://`, any case: the values this rule applies to (anything else is compared exactly). */
export function httpScheme(value: string): 'http' | 'https' | undefined {
  // ASCII letters only: `| 0x20` folds A-Z to a-z and leaves every other character unequal.
  if ((value.charCodeAt(0) | 0x20) !== 0x68 || (value.charCodeAt(1) | 0x20) !== 0x74 || (value.charCodeAt(2) | 0x20) !== 0x74 || (value.charCodeAt(3) | 0x20) !== 0x70) return undefined;
  const secure = (value.charCodeAt(4) | 0x20) === 0x73;
  const at = secure ? 5 : 4;
  if (value.charCodeAt(at) !== COLON || value.charCodeAt(at + 1) !== SLASH || value.charCodeAt(at + 2) !== SLASH) return undefined;
  return secure ? 'https' : 'http';
}

/**
 * comparableHttpUri of a value the gateway expects (a route's resource URL, a configured
 * audience): few, and the same strings on every request, so each is computed once (bounded all
 * the same, for config reloads).
 */
export function expectedComparable(uri: string, withoutQueryAndFragment = false): string | undefined {
  const memo = withoutQueryAndFragment ? expectedWithoutQuery : expected;
  let form = memo.get(uri);
  if (form === undefined) {
    form = comparableHttpUri(uri, withoutQueryAndFragment) ?? null;
    memo.set(uri, form);
  }
  return form ?? undefined;
}

/** Few values, changed only by a reload: when full, a memo starts over rather than track age. */
const MEMO = { maxEntries: 1024, whenFull: 'clear' } as const;
const expected = new BoundedMap<string, string | null>(MEMO);
const expectedWithoutQuery = new BoundedMap<string, string | null>(MEMO);

/**
 * The form in which two spellings of one http(s) URI are equal (see above), or undefined when
 * `uri` is not an http(s) URI this rule accepts. With `withoutQueryAndFragment` (a DPoP `htu`,
 * RFC 9449 §4.3 item 9) everything from the first `?` or `#` is cut off first; otherwise a
 * query is kept as written and a fragment makes the value unacceptable (RFC 8707 §2: a resource
 * indicator has none).
 */
export function comparableHttpUri(uri: string, withoutQueryAndFragment = false): string | undefined {
  const scheme = httpScheme(uri);
  if (scheme === undefined) return undefined;
  const end = withoutQueryAndFragment ? cutQueryAndFragment(uri) : uri.length;
  let at = scheme.length + 3;

  // host = IP-literal / IPv4address / reg-name (RFC 3986 §3.2.2), compared as written.
  const hostStart = at;
  if (uri.charCodeAt(at) === OPEN_BRACKET) {
    at++;
    while (at < end && has(uri.charCodeAt(at), IPV6_CHAR)) at++;
    // IPvFuture (`[v1.…]`) and zone identifiers (`%25`, RFC 6874) stop here: never an http host we serve.
    if (uri.charCodeAt(at) !== CLOSE_BRACKET || !isIPv6(uri.slice(hostStart + 1, at))) return undefined;
    at++;
  } else {
    at = skipChars(uri, at, end, UNRESERVED | SUB_DELIM, false);
    if (at === hostStart) return undefined; // RFC 9110 §4.2.1: an http(s) URI with an empty host is invalid
  }
  const host = uri.slice(hostStart, at).toLowerCase();

  // port = *DIGIT, kept as written unless it is exactly the scheme's default.
  let port = '';
  if (at < end && uri.charCodeAt(at) === COLON) {
    const portStart = ++at;
    while (at < end && isDigit(uri.charCodeAt(at))) at++;
    const written = uri.slice(portStart, at);
    if (written !== (scheme === 'http' ? '80' : '443')) port = `:${written}`;
  }
  // Whatever else ends the authority (`@` of userinfo, `\`, whitespace…) makes the value unacceptable.
  if (at < end && uri.charCodeAt(at) !== SLASH && uri.charCodeAt(at) !== QUESTION) return undefined;

  // path-abempty = *( "/" segment ), byte for byte; an empty path is "/" (RFC 9110 §4.2.3).
  const pathStart = at;
  at = skipChars(uri, at, end, UNRESERVED | SUB_DELIM | PCHAR_EXTRA, true);
  const path = at === pathStart ? '/' : uri.slice(pathStart, at);
  if (at === end) return `${scheme}://${host}${port}${path}`;

  // query = *( pchar / "/" / "?" ), byte for byte (present but empty is not absent).
  if (uri.charCodeAt(at) !== QUESTION) return undefined;
  const queryStart = at;
  at = skipChars(uri, at + 1, end, UNRESERVED | SUB_DELIM | PCHAR_EXTRA, true, true);
  if (at !== end) return undefined; // a fragment, or a character outside the grammar
  return `${scheme}://${host}${port}${path}${uri.slice(queryStart, end)}`;
}

function cutQueryAndFragment(uri: string): number {
  for (let at = 0; at < uri.length; at++) {
    const code = uri.charCodeAt(at);
    if (code === QUESTION || code === HASH) return at;
  }
  return uri.length;
}

/** The end of the run of `bits` characters (and pct-encoded octets, and `/` and `?` if allowed) from `at`. */
function skipChars(uri: string, at: number, end: number, bits: number, slash: boolean, question = false): number {
  while (at < end) {
    const code = uri.charCodeAt(at);
    if (has(code, bits) || (slash && code === SLASH) || (question && code === QUESTION)) {
      at++;
    } else if (code === PERCENT) {
      // pct-encoded = "%" HEXDIG HEXDIG; a lone "%" stops the run, and so fails the parse.
      if (at + 2 >= end || !has(uri.charCodeAt(at + 1), HEX) || !has(uri.charCodeAt(at + 2), HEX)) return at;
      at += 3;
    } else {
      return at;
    }
  }
  return at;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}
