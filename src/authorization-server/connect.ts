import * as oidc from 'openid-client';
import { asOAuthError, pageError, seeOther } from './answers.js';
import { fromBoundBrowser, readCookie } from './cookies.js';
import { OAuthError } from './errors.js';
import { escapeHtml, page, PAGE_HEADERS } from './html.js';
import type { PageUser } from './page-login.js';
import { startPageLogin } from './page-login.js';
import { KEYS, readRecord, writeRecord } from './records.js';
import { digest, randomHandle, sameSecret } from './secrets.js';
import type { AuthorizationServer } from './service.js';

/** The provider's half of a connection: started once the user proved who they are. */
interface ConnectFlow {
  readonly subject: string;
  readonly connection: string;
  /** The connect request's nonce: finished when the connection is made. */
  readonly nonce: string;
  readonly browser: string;
  readonly codeVerifier: string;
}

const FLOW_TTL_MS = 10 * 60_000;

/**
 * GET /oauth/connect?request=…: where a URL-mode elicitation sends the user (MCP elicitation
 * §URL Mode Elicitation for OAuth Flows). Nothing is shown or started before the person at the
 * browser logs in at the IdP (§Phishing: the server MUST verify the identity of the user who
 * opens the URL), so a link forwarded to, or sent by, someone else connects nothing.
 */
export async function handleConnect(as: AuthorizationServer, request: Request): Promise<Response> {
  try {
    const nonce = new URL(request.url).searchParams.get('request') ?? '';
    const connections = requireConnections(as);
    await connections.findRequest(nonce);
    return await startPageLogin(as, request, { page: 'connect', nonce });
  } catch (error) {
    return failurePage(as, error);
  }
}

/**
 * The user logged in at the IdP for a connect link: binds only if they are the user the link was
 * made for. Anyone else (the link forwarded, leaked, or sent to a victim by whoever asked for it)
 * is refused and the link burnt. Then the browser goes to the provider, with the gateway's own
 * PKCE and state, bound to this browser.
 */
export async function continueConnect(as: AuthorizationServer, request: Request, nonce: string, user: PageUser): Promise<Response> {
  const connections = requireConnections(as);
  const asked = await connections.findRequest(nonce);
  if (!sameSecret(digest(user.subject), digest(asked.subject))) {
    await connections.finishRequest(nonce);
    as.logger.warn({ event: 'connected-account', outcome: 'other-user', route: asked.route, asked: asked.subject, signedIn: user.subject }, 'a connect link was opened by another user: nothing connected, the link is burnt');
    return message(403, 'Not connected', `You signed in as <strong>${escapeHtml(user.displayName)}</strong>, but this link was made for another account. Nothing was connected. Open the link only from your own application.`);
  }
  const provider = as.providers.get(asked.connection);
  if (!provider) throw new OAuthError('invalid_request', 'this connection is no longer configured');
  const state = randomHandle();
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const cookie = readCookie(request.headers.get('cookie'), as.cookies.binding)!;
  const flow: ConnectFlow = { subject: asked.subject, connection: asked.connection, nonce, browser: digest(cookie), codeVerifier };
  await writeRecord(as.store, KEYS.connectFlow(digest(state)), flow, FLOW_TTL_MS);
  const location = provider.authorizationUrl(state, await oidc.calculatePKCECodeChallenge(codeVerifier));
  return seeOther(location.href);
}

/**
 * GET /oauth/connect/callback: the provider sends the browser back (RFC 6749 §4.1.2). The state
 * must name a flow started in this browser, once; the code is exchanged with the PKCE verifier,
 * and the tokens are kept sealed for the subject the flow was started for, never for anyone
 * the callback could name.
 */
export async function handleConnectCallback(as: AuthorizationServer, request: Request): Promise<Response> {
  try {
    const connections = requireConnections(as);
    const query = new URL(request.url).searchParams;
    const state = query.get('state') ?? '';
    const flow = state === '' ? undefined : await readRecord<ConnectFlow>(as.store, KEYS.connectFlow(digest(state)));
    if (!flow) throw new OAuthError('invalid_request', 'this connection attempt is unknown, already finished or expired: retry in your application');
    if (!fromBoundBrowser(request, as.cookies, flow.browser)) throw new OAuthError('access_denied', 'this connection was started in another browser: open the link from your application again');
    if (!(await as.store.setIfAbsent(KEYS.connectFlowUsed(digest(state)), '1', FLOW_TTL_MS))) throw new OAuthError('invalid_request', 'this connection attempt was already finished');
    await as.store.delete(KEYS.connectFlow(digest(state)));
    const provider = as.providers.get(flow.connection);
    if (!provider) throw new OAuthError('invalid_request', 'this connection is no longer configured');
    const name = escapeHtml(provider.config.name);
    const providerError = query.get('error');
    if (providerError !== null) {
      return message(403, 'Not connected', `${name} did not connect your account (<code>${escapeHtml(providerError.replace(/[^\w.-]/g, '').slice(0, 60))}</code>). Retry in your application to try again.`);
    }
    const outcome = await provider.exchangeCode(query.get('code') ?? '', flow.codeVerifier);
    if (outcome.kind !== 'issued') {
      as.logger.warn({ event: 'connected-account', outcome: outcome.kind, connection: flow.connection, ...(outcome.kind === 'refused' ? { error: outcome.error } : { why: outcome.why }) }, 'connecting an account failed at the provider');
      return outcome.kind === 'refused'
        ? message(400, 'Not connected', `${name} refused to connect your account. Retry in your application to try again.`)
        : message(503, 'Not connected', `${name} cannot be reached right now. Retry in your application shortly.`);
    }
    await connections.slot(flow.connection).write(flow.subject, outcome.tokens);
    await connections.finishRequest(flow.nonce);
    as.logger.info({ event: 'connected-account', outcome: 'connected', subject: flow.subject, connection: flow.connection, provider: provider.config.name }, 'account connected');
    return message(200, `${provider.config.name} connected`, `Your ${name} account is connected. Go back to your application and retry. You can see and remove your connections at <a href="${escapeHtml(as.endpoints.connections)}">${escapeHtml(as.endpoints.connections)}</a>.`);
  } catch (error) {
    return failurePage(as, error);
  }
}

export function requireConnections(as: AuthorizationServer): NonNullable<AuthorizationServer['connections']> {
  if (!as.connections) throw new OAuthError('invalid_request', 'no accounts can be connected here');
  return as.connections;
}

/** `body` is markup already escaped. */
export function message(status: number, title: string, body: string): Response {
  return new Response(page(escapeHtml(title), `<h1>${escapeHtml(title)}</h1>\n<p>${body}</p>`), { status, headers: PAGE_HEADERS });
}

export function failurePage(as: AuthorizationServer, error: unknown): Response {
  const failure = asOAuthError(error);
  if (failure.code === 'server_error') as.logger.error({ err: error }, 'connected-account page failed');
  return pageError(failure);
}
