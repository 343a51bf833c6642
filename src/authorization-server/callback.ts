import { approve, displayName } from './approve.js';
import { asOAuthError, pageError, redirectError, seeOther, type RedirectTarget } from './answers.js';
import { continueConnect, failurePage } from './connect.js';
import { openConnectionsView } from './connections-page.js';
import { fromBoundBrowser } from './cookies.js';
import { OAuthError } from './errors.js';
import { consentCovers, grantableScopes, scopesToGrant } from './grants.js';
import { findPageLogin, finishPageLogin } from './page-login.js';
import type { PendingAuthorization } from './pending.js';
import type { AuthorizationServer } from './service.js';
import { carriedClaims } from './tokens.js';

/**
 * GET /oauth/callback: the IdP sends the browser back. The `state` must name a pending
 * authorization started in this browser (its binding cookie) and not yet answered (RFC 6749
 * §10.12, RFC 9700 §4.7); otherwise the error is shown on a page, since nothing ties the request
 * to a client. Then the IdP's answer: its error goes to the client as access_denied or
 * server_error; its code is exchanged (openid-client checks the ID token), the user's grantable
 * scopes are worked out, and the consent page follows unless this user already approved this
 * client for all of them.
 */
export async function handleCallback(as: AuthorizationServer, request: Request): Promise<Response> {
  const query = new URL(request.url).searchParams;
  const pageLogin = await findPageLogin(as, query.get('state') ?? '').catch(() => undefined);
  if (pageLogin) return pageLoggedIn(as, request, query, pageLogin);
  let id: string;
  let pending: PendingAuthorization;
  try {
    id = query.get('state') ?? '';
    if (id === '') throw new OAuthError('invalid_request', "the identity provider's answer carries no state");
    pending = await as.pending.find(id);
    if (!fromBoundBrowser(request, as.cookies, pending.browser)) {
      throw new OAuthError('access_denied', 'this sign-in was started in another browser (or its cookie is gone): start again from your application');
    }
    if (!(await as.pending.claimCallback(id))) throw new OAuthError('invalid_request', 'this sign-in was already completed: start again from your application');
  } catch (error) {
    return pageError(asOAuthError(error));
  }
  const target: RedirectTarget = pending;
  try {
    return await loggedIn(as, id, pending, query);
  } catch (error) {
    const failure = asOAuthError(error);
    if (failure.code === 'server_error' || failure.code === 'temporarily_unavailable') as.logger.warn({ err: error, client: pending.clientId }, `login at the identity provider failed: ${failure.description}`);
    await as.pending.finish(id);
    return redirectError(failure, target, as.issuer);
  }
}

async function loggedIn(as: AuthorizationServer, id: string, pending: PendingAuthorization, query: URLSearchParams): Promise<Response> {
  const idpError = query.get('error');
  if (idpError !== null) {
    // RFC 6749 §4.1.2.1 codes pass on as they are where they still mean the same to the client;
    // the IdP's own description is not repeated (it may name the gateway's client at the IdP).
    const code = idpError === 'access_denied' || idpError === 'temporarily_unavailable' ? idpError : 'server_error';
    throw new OAuthError(code, `the identity provider did not log the user in (${idpError.replace(/[^\w.-]/g, '').slice(0, 60)})`);
  }
  const login = await as.upstream.finish(query, { state: id, codeVerifier: pending.idpCodeVerifier, ...(pending.idpNonce !== undefined ? { nonce: pending.idpNonce } : {}) });
  const subject = `${as.upstream.namespace}|${login.subject}`;
  const grantable = grantableScopes(as.config.grants, login);
  const previous = await as.consents.approved(subject, pending.clientId);
  const scopes = scopesToGrant(pending.requestedScopes, previous ?? [], grantable);
  if (scopes.length === 0) throw new OAuthError('access_denied', 'none of the requested scopes may be granted to this user');
  const user = {
    subject,
    displayName: displayName(login.claims, login.subject),
    scopes,
    newScopes: scopes.filter((scope) => !(previous ?? []).includes(scope)),
    authTime: Math.floor(Date.now() / 1000),
    ...(as.config.tokens.claims.length > 0 ? { claims: carriedClaims(login.claims, as.config.tokens.claims) } : {}),
    ...(as.vault ? { idpTokens: await as.vault.seal(subject, login.tokens) } : {}),
    csrf: '',
  };
  if (consentCovers(previous, scopes)) return approve(as, id, pending, user);
  await as.pending.update(id, { ...pending, user });
  return seeOther(`${as.endpoints.consent}?request=${encodeURIComponent(id)}`);
}

/**
 * A login for one of the gateway's own pages (page-login.ts), not for a client: the IdP's errors
 * and the pages' own are shown on a page, since there is no client to tell.
 */
async function pageLoggedIn(as: AuthorizationServer, request: Request, query: URLSearchParams, login: NonNullable<Awaited<ReturnType<typeof findPageLogin>>>): Promise<Response> {
  try {
    const { user, purpose } = await finishPageLogin(as, request, query.get('state')!, login, query);
    return purpose.page === 'connect' ? await continueConnect(as, request, purpose.nonce, user) : await openConnectionsView(as, request, user);
  } catch (error) {
    return failurePage(as, error);
  }
}
