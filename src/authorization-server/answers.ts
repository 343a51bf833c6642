import { OAuthError } from './errors.js';
import { errorPage, PAGE_HEADERS } from './html.js';

/**
 * The one place each kind of answer is made: JSON for the endpoints clients call directly
 * (token, registration, revocation), a redirect to the client's validated redirect URI for the
 * authorization endpoint, a gateway page when no redirect URI can be trusted (RFC 6749
 * §4.1.2.1: never redirect to an unvalidated URI; RFC 9700 §4.11 open redirectors).
 */

/** RFC 6749 §5.1: token responses and errors must not be cached. */
export const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;

/** An unexpected failure becomes server_error; its cause is logged by the caller, never shown. */
export function asOAuthError(error: unknown): OAuthError {
  return error instanceof OAuthError ? error : new OAuthError('server_error', 'the authorization server failed to complete the request', { cause: error });
}

/**
 * RFC 6749 §5.2 (RFC 7591 §3.2.2, RFC 7009 §2.2.1 share the shape). invalid_client is 401 with a
 * Basic challenge only when the client tried HTTP authentication (§5.2 "MUST" then); a public
 * client naming an unknown id gets 400, and no browser ever shows a password prompt.
 */
export function jsonError(error: OAuthError, request?: Request): Response {
  const headers: Record<string, string> = { ...NO_STORE };
  let status = error.status;
  if (error.code === 'invalid_client') {
    if (request?.headers.get('authorization')?.toLowerCase().startsWith('basic ')) headers['www-authenticate'] = 'Basic realm="oauth"';
    else status = 400;
  }
  if (error.code === 'temporarily_unavailable') headers['retry-after'] = '5';
  return Response.json({ error: error.code, error_description: error.description }, { status, headers });
}

export function jsonAnswer(body: unknown, status = 200, headers: Readonly<Record<string, string>> = {}): Response {
  return Response.json(body, { status, headers: { ...NO_STORE, ...headers } });
}

/** Where a validated authorization request's answer goes (RFC 6749 §4.1.2). */
export interface RedirectTarget {
  readonly redirectUri: string;
  /** The client's `state`, returned as it came. */
  readonly state?: string;
}

/**
 * An authorization response: `code` or `error` with `state`, and always `iss` (RFC 9207 §2, so a
 * client talking to several authorization servers can tell which one answered). Query
 * parameters are added to the redirect URI's own, which stay (RFC 6749 §3.1.2).
 */
export function redirectAnswer(target: RedirectTarget, issuer: string, params: Readonly<Record<string, string>>): Response {
  const url = new URL(target.redirectUri);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  if (target.state !== undefined) url.searchParams.set('state', target.state);
  url.searchParams.set('iss', issuer);
  return seeOther(url.href, { pragma: 'no-cache' });
}

/**
 * A 303 the browser follows (to the client, the IdP or a gateway page): never cached, and its
 * URL, which may carry a one-time handle, never sent on as a referrer.
 */
export function seeOther(location: string, headers: Readonly<Record<string, string>> = {}): Response {
  return new Response(null, { status: 303, headers: { location, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', ...headers } });
}

export function redirectError(error: OAuthError, target: RedirectTarget, issuer: string): Response {
  return redirectAnswer(target, issuer, { error: error.code, error_description: error.description });
}

/** An error shown to the user by the gateway itself: nothing goes back to an unvalidated client. */
export function pageError(error: OAuthError): Response {
  return new Response(errorPage(error.code, error.description), { status: error.status, headers: PAGE_HEADERS });
}
