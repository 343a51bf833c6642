import { approve } from './approve.js';
import { asOAuthError, pageError, redirectError } from './answers.js';
import { consentHeaders, consentPage } from './consent-page.js';
import { fromBoundBrowser, readCookie, setCookie } from './cookies.js';
import { OAuthError } from './errors.js';
import { readForm } from './form.js';
import type { PendingAuthorization, PendingUser } from './pending.js';
import { digest, randomHandle, sameSecret } from './secrets.js';
import type { AuthorizationServer } from './service.js';

/**
 * GET /oauth/consent?request=…: the gateway's consent page for a logged-in user and a client
 * they have not approved (for these scopes). Each view gets a fresh CSRF token, in a
 * SameSite=Strict cookie and in the form (double submit), its digest kept with the request.
 */
export async function showConsent(as: AuthorizationServer, request: Request): Promise<Response> {
  try {
    const id = new URL(request.url).searchParams.get('request') ?? '';
    const { pending, user } = await awaitingDecision(as, request, id);
    const csrf = randomHandle();
    await as.pending.update(id, { ...pending, user: { ...user, csrf: digest(csrf) } });
    const html = consentPage({
      clientId: pending.clientId,
      ...(pending.clientName !== undefined ? { clientName: pending.clientName } : {}),
      redirectUri: pending.redirectUri,
      user: user.displayName,
      scopes: user.scopes,
      newScopes: user.newScopes,
      requestId: id,
      csrfToken: csrf,
      formAction: as.paths.consent,
    });
    const cookie = setCookie(as.cookies.csrf, csrf, { secure: as.secure, sameSite: 'Strict', maxAgeSeconds: 600 });
    return new Response(html, { headers: { ...consentHeaders(pending.redirectUri), 'set-cookie': cookie } });
  } catch (error) {
    return pageError(asOAuthError(error));
  }
}

/**
 * POST /oauth/consent: the user's decision. Refused on a page, with nothing sent to the client,
 * unless it comes from this origin (Origin and Sec-Fetch-Site, when the browser sends them), from
 * the browser that started the authorization, with the CSRF token in both cookie and form equal
 * to the one issued for this request. One decision per request, across replicas.
 */
export async function decideConsent(as: AuthorizationServer, request: Request): Promise<Response> {
  let id: string;
  let pending: PendingAuthorization;
  let user: PendingUser;
  let decision: string | undefined;
  try {
    checkSameOrigin(as, request);
    const form = await readForm(request);
    id = form.get('request') ?? '';
    ({ pending, user } = await awaitingDecision(as, request, id));
    const posted = form.get('csrf') ?? '';
    const cookie = readCookie(request.headers.get('cookie'), as.cookies.csrf) ?? '';
    if (posted === '' || !sameSecret(posted, cookie) || user.csrf === '' || !sameSecret(digest(posted), user.csrf)) {
      throw new OAuthError('access_denied', 'the consent form could not be verified: reload the page and decide again');
    }
    decision = form.get('decision');
    if (decision !== 'approve' && decision !== 'deny') throw new OAuthError('invalid_request', 'decide with one of the two buttons');
    if (!(await as.pending.claimDecision(id))) throw new OAuthError('invalid_request', 'this request was already decided');
  } catch (error) {
    return pageError(asOAuthError(error));
  }
  if (decision === 'approve') return approve(as, id, pending, user);
  await as.pending.finish(id);
  as.logger.info({ event: 'authorization', client: pending.clientId, subject: user.subject }, 'consent refused');
  return redirectError(new OAuthError('access_denied', 'the user refused'), pending, as.issuer);
}

/** The pending authorization `id`, logged in, undecided and started in this browser. */
async function awaitingDecision(as: AuthorizationServer, request: Request, id: string): Promise<{ pending: PendingAuthorization; user: PendingUser }> {
  const pending = await as.pending.find(id);
  if (!fromBoundBrowser(request, as.cookies, pending.browser)) {
    throw new OAuthError('access_denied', 'this sign-in was started in another browser: start again from your application');
  }
  if (!pending.user) throw new OAuthError('invalid_request', 'this request has no signed-in user yet: start again from your application');
  return { pending, user: pending.user };
}

/** A form post from another site is refused whatever it carries (Fetch Metadata, RFC 6454 Origin). */
function checkSameOrigin(as: AuthorizationServer, request: Request): void {
  const origin = request.headers.get('origin');
  const site = request.headers.get('sec-fetch-site');
  if ((origin !== null && origin !== new URL(as.issuer).origin) || (site !== null && site !== 'same-origin')) {
    throw new OAuthError('access_denied', 'the consent form was not sent from this page');
  }
}
