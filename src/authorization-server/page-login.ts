import * as oidc from 'openid-client';
import { seeOther } from './answers.js';
import { bindingCookie, fromBoundBrowser, readCookie } from './cookies.js';
import { OAuthError } from './errors.js';
import { KEYS, readRecord, writeRecord } from './records.js';
import { digest, randomHandle } from './secrets.js';
import type { AuthorizationServer } from './service.js';
import { displayName } from './approve.js';

/**
 * Why a browser is sent to log in at the IdP for one of the gateway's own pages (not for an
 * OAuth client): to connect an account (connect.ts) or to see and remove connections
 * (connections-page.ts).
 */
export type PageLoginPurpose = { readonly page: 'connect'; readonly nonce: string } | { readonly page: 'connections' };

interface PageLoginRecord {
  readonly purpose: PageLoginPurpose;
  /** Digest of the binding cookie of the browser that started it: only that browser may finish it. */
  readonly browser: string;
  readonly idpCodeVerifier: string;
  readonly idpNonce?: string;
}

/** Who logged in at the IdP, as the gateway names them. */
export interface PageUser {
  /** `<namespace>|<IdP subject>`: the same subject the gateway's tokens carry. */
  readonly subject: string;
  readonly displayName: string;
}

const PAGE_LOGIN_TTL_MS = 10 * 60_000;

/**
 * Sends the browser to the IdP to log in, with the gateway's own PKCE, `state` and `nonce`, as
 * the authorization endpoint does (authorize.ts); the login comes back to the one callback the
 * IdP knows (/oauth/callback), which tells it apart by its `state` (finishPageLogin). The
 * browser is bound by the same cookie, so a login started in one browser cannot be finished in
 * another (RFC 6749 §10.12).
 */
export async function startPageLogin(as: AuthorizationServer, request: Request, purpose: PageLoginPurpose): Promise<Response> {
  const cookie = readCookie(request.headers.get('cookie'), as.cookies.binding) ?? randomHandle();
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const nonce = as.upstream.openId ? oidc.randomNonce() : undefined;
  const id = randomHandle();
  const record: PageLoginRecord = { purpose, browser: digest(cookie), idpCodeVerifier: codeVerifier, ...(nonce ? { idpNonce: nonce } : {}) };
  await writeRecord(as.store, KEYS.pageLogin(digest(id)), record, PAGE_LOGIN_TTL_MS);
  const idpUrl = await as.upstream.authorizationUrl({ state: id, codeVerifier, ...(nonce ? { nonce } : {}) });
  return seeOther(idpUrl.href, { 'set-cookie': bindingCookie(as.cookies, cookie, as.secure) });
}

/** The page login `state` names, if it names one (the callback asks before looking for an authorization). */
export async function findPageLogin(as: AuthorizationServer, state: string): Promise<PageLoginRecord | undefined> {
  return state === '' ? undefined : readRecord<PageLoginRecord>(as.store, KEYS.pageLogin(digest(state)));
}

/**
 * The IdP sent the browser back from a page login: in the browser that started it, once; the
 * code is exchanged (openid-client checks the ID token) and the user named as the gateway's
 * tokens name them. Throws OAuthError, shown on a page.
 */
export async function finishPageLogin(as: AuthorizationServer, request: Request, state: string, login: PageLoginRecord, query: URLSearchParams): Promise<{ user: PageUser; purpose: PageLoginPurpose }> {
  if (!fromBoundBrowser(request, as.cookies, login.browser)) {
    throw new OAuthError('access_denied', 'this sign-in was started in another browser (or its cookie is gone): open the link again');
  }
  if (!(await as.store.setIfAbsent(KEYS.pageLoginUsed(digest(state)), '1', PAGE_LOGIN_TTL_MS))) throw new OAuthError('invalid_request', 'this sign-in was already completed: open the link again');
  await as.store.delete(KEYS.pageLogin(digest(state)));
  const idpError = query.get('error');
  if (idpError !== null) throw new OAuthError(idpError === 'temporarily_unavailable' ? idpError : 'access_denied', `the identity provider did not log you in (${idpError.replace(/[^\w.-]/g, '').slice(0, 60)})`);
  const result = await as.upstream.finish(query, { state, codeVerifier: login.idpCodeVerifier, ...(login.idpNonce !== undefined ? { nonce: login.idpNonce } : {}) });
  return { user: { subject: `${as.upstream.namespace}|${result.subject}`, displayName: displayName(result.claims, result.subject) }, purpose: login.purpose };
}
