/**
 * Which of a client's registered redirect URIs an authorization request names: the URI to send
 * the answer to, or undefined (the request is then refused on a gateway page, never redirected).
 *
 * - Exact string comparison (RFC 9700 §4.1.3, OAuth 2.1 §2.3.1): no prefix, wildcard or case
 *   folding, so no open redirector.
 * - One exception: a loopback `http` URI matches on any port (RFC 8252 §7.3, OAuth 2.1 §8.4.2),
 *   because native apps listen on an ephemeral port that cannot be registered in advance. Host,
 *   path and query must still be the same, character for character.
 * - No redirect_uri at all is accepted only when exactly one is registered (RFC 6749 §3.1.2.3).
 */
export function matchRedirectUri(registered: readonly string[], requested: string | undefined): string | undefined {
  if (requested === undefined) return registered.length === 1 ? registered[0] : undefined;
  if (registered.includes(requested)) return requested;
  const wanted = loopbackParts(requested);
  if (wanted === undefined || !URL.canParse(requested)) return undefined;
  return registered.some((uri) => loopbackParts(uri) === wanted) ? requested : undefined;
}

const LOOPBACK = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(:[0-9]{1,5})?(\/[^#]*)?$/;

/** A loopback http URI without its port, or undefined for any other URI. */
function loopbackParts(uri: string): string | undefined {
  const match = LOOPBACK.exec(uri);
  if (!match) return undefined;
  return `http://${match[1]}${match[3] ?? ''}`;
}
