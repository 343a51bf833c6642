/**
 * Why an argument value a path glob constrains is refused before any matching: an upstream may
 * build a path or URL from it (`/repos/${repo}`), percent-decode it once (RFC 3986 §2.1), fold
 * compatibility characters (NFKC) or resolve dot segments (RFC 3986 §5.2.4), and then act on
 * something other than what the glob admitted. A value is accepted only when it has the same
 * `/` segments, none of them a dot segment, however the upstream reads it.
 */
export type PathValueProblem =
  | 'backslash'
  | 'control-character'
  | 'dot-segment'
  | 'empty-segment'
  /** `%2f`, or a character such as U+FF0F that NFKC folds to `/`: a separator the glob did not see. */
  | 'hidden-separator'
  /** Still percent-encoded after one decode (`%252e`): what it means depends on how often the upstream decodes. */
  | 'double-encoded'
  /** Percent escapes that are not UTF-8 (`%c0%ae`, an overlong `.`, or `%ff`). */
  | 'malformed-escape';

// C0, DEL and C1: never part of a name, and NUL or CR/LF end or split a path or a request line.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const ESCAPE = /%[0-9a-fA-F]{2}/;
const ESCAPE_RUNS = /(?:%[0-9a-fA-F]{2})+/g;
// ignoreBOM keeps a leading U+FEFF as it is instead of dropping it silently.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function pathValueProblem(value: string): PathValueProblem | undefined {
  if (value === '') return 'empty-segment';
  const once = decodeOnce(value);
  if (once === undefined) return 'malformed-escape';
  if (ESCAPE.test(once)) return 'double-encoded';
  const segments = value.split('/').length;
  for (const form of [value, once, once.normalize('NFKC')]) {
    if (form.includes('\\')) return 'backslash';
    if (CONTROL.test(form)) return 'control-character';
    const parts = form.split('/');
    if (parts.length !== segments) return 'hidden-separator';
    // A leading empty segment is an absolute path, which only a pattern starting with `/` matches.
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === '') {
        if (i > 0) return 'empty-segment';
      } else if (isDotSegment(parts[i]!)) {
        return 'dot-segment';
      }
    }
  }
  return undefined;
}

/**
 * `.` and `..` (RFC 3986 §3.3), and lookalikes servers resolve the same way: any run of dots
 * (Windows drops trailing dots and spaces, so `...` and `.. ` can name the parent), and a dot
 * segment with path parameters (`..;x`, which Tomcat and others strip before resolving).
 */
function isDotSegment(segment: string): boolean {
  const name = segment.split(';', 1)[0]!;
  let dots = 0;
  for (const char of name) {
    if (char === '.') dots++;
    else if (char !== ' ') return false;
  }
  return dots > 0;
}

/** One percent-decoding pass, leaving a `%` that starts no escape as it is; undefined if not UTF-8. */
function decodeOnce(value: string): string | undefined {
  if (!value.includes('%')) return value;
  let malformed = false;
  const decoded = value.replace(ESCAPE_RUNS, (run) => {
    const bytes = new Uint8Array(run.length / 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(run.slice(i * 3 + 1, i * 3 + 3), 16);
    try {
      return utf8.decode(bytes);
    } catch {
      malformed = true;
      return '';
    }
  });
  return malformed ? undefined : decoded;
}

/** Load-time check of a pattern: one that only refused values could match is a policy error. */
export function pathPatternProblem(pattern: string): string | undefined {
  const problem = pathValueProblem(pattern);
  return problem === undefined ? undefined : `${PATTERN_PROBLEMS[problem]}, which no value may have`;
}

const PATTERN_PROBLEMS: Record<PathValueProblem, string> = {
  backslash: 'has a backslash',
  'control-character': 'has a control character',
  'dot-segment': "has a '.' or '..' segment",
  'empty-segment': "has an empty segment ('//' or a trailing '/')",
  'hidden-separator': "has an encoded '/' (%2f)",
  'double-encoded': 'is percent-encoded twice',
  'malformed-escape': 'has a percent escape that is not UTF-8',
};
