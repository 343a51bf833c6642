/** Longest string a log line carries from a request (paths, URIs, names, messages, argument values). */
export const MAX_LOGGED_STRING = 256;

/** The text, cut to MAX_LOGGED_STRING with an ellipsis: one request cannot flood a log line. */
export function bounded(text: string): string {
  return text.length > MAX_LOGGED_STRING ? `${text.slice(0, MAX_LOGGED_STRING)}…` : text;
}
