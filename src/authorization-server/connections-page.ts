import { failurePage, message, requireConnections } from './connect.js';
import { seeOther } from './answers.js';
import { fromBoundBrowser, readCookie, setCookie } from './cookies.js';
import { OAuthError } from './errors.js';
import { readForm } from './form.js';
import { escapeHtml, page, PAGE_HEADERS } from './html.js';
import { startPageLogin, type PageUser } from './page-login.js';
import { KEYS, readRecord, writeRecord } from './records.js';
import { digest, randomHandle, sameSecret } from './secrets.js';
import type { AuthorizationServer } from './service.js';

/** A signed-in look at one's connections: who, in which browser, with which form token. */
interface ConnectionsView {
  readonly subject: string;
  readonly displayName: string;
  readonly browser: string;
  /** Digest of the current form's CSRF token ('' before the page is shown). */
  readonly csrf: string;
}

const VIEW_TTL_MS = 10 * 60_000;

/**
 * GET /oauth/connections: a user's connected accounts, each with a button that disconnects it.
 * Signed in at the IdP first (page-login.ts); the view is then bound to this browser for ten
 * minutes. Each showing issues a fresh CSRF token (double submit, as on the consent page).
 */
export async function showConnections(as: AuthorizationServer, request: Request): Promise<Response> {
  try {
    const connections = requireConnections(as);
    const id = new URL(request.url).searchParams.get('view') ?? '';
    const view = id === '' ? undefined : await findView(as, request, id);
    if (!view) return await startPageLogin(as, request, { page: 'connections' });
    const csrf = randomHandle();
    await writeRecord(as.store, KEYS.connectionsView(digest(id)), { ...view, csrf: digest(csrf) }, VIEW_TTL_MS);
    const rows: string[] = [];
    for (const [connection, provider] of as.providers) {
      const connected = await connections.has(connection, view.subject);
      rows.push(`<li><strong>${escapeHtml(provider.config.name)}</strong>: ${connected
        ? `connected <button type="submit" name="connection" value="${escapeHtml(connection)}">Disconnect</button>`
        : 'not connected'}</li>`);
    }
    const html = page(
      'Connected accounts',
      `<h1>Connected accounts</h1>
<p>You are signed in as <strong>${escapeHtml(view.displayName)}</strong>. MCP servers behind this gateway act with these accounts for you.</p>
<form method="post" action="${escapeHtml(as.paths.connections)}">
<input type="hidden" name="view" value="${escapeHtml(id)}">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<ul>
${rows.join('\n')}
</ul>
</form>
<p>Disconnecting forgets the gateway's tokens for that account; to revoke the gateway's access at the service itself, remove it in the service's own settings too.</p>`,
    );
    const cookie = setCookie(as.cookies.connections, csrf, { secure: as.secure, sameSite: 'Strict', maxAgeSeconds: 600 });
    return new Response(html, { headers: { ...PAGE_HEADERS, 'set-cookie': cookie } });
  } catch (error) {
    return failurePage(as, error);
  }
}

/** The user logged in at the IdP to see their connections: a view bound to this browser. */
export async function openConnectionsView(as: AuthorizationServer, request: Request, user: PageUser): Promise<Response> {
  const cookie = readCookie(request.headers.get('cookie'), as.cookies.binding)!;
  const id = randomHandle();
  const view: ConnectionsView = { subject: user.subject, displayName: user.displayName, browser: digest(cookie), csrf: '' };
  await writeRecord(as.store, KEYS.connectionsView(digest(id)), view, VIEW_TTL_MS);
  return seeOther(`${as.endpoints.connections}?view=${encodeURIComponent(id)}`);
}

/**
 * POST /oauth/connections: disconnects one account. Refused unless it comes from this origin, from
 * the browser the view was opened in, with the CSRF token in both cookie and form equal to the
 * one issued for the view; only the signed-in user's own connection can be named.
 */
export async function disconnect(as: AuthorizationServer, request: Request): Promise<Response> {
  try {
    const connections = requireConnections(as);
    const origin = request.headers.get('origin');
    const site = request.headers.get('sec-fetch-site');
    if ((origin !== null && origin !== new URL(as.issuer).origin) || (site !== null && site !== 'same-origin')) throw new OAuthError('access_denied', 'the form was not sent from this page');
    const form = await readForm(request);
    const id = form.get('view') ?? '';
    const view = await findView(as, request, id);
    const posted = form.get('csrf') ?? '';
    const cookie = readCookie(request.headers.get('cookie'), as.cookies.connections) ?? '';
    if (!view || posted === '' || !sameSecret(posted, cookie) || view.csrf === '' || !sameSecret(digest(posted), view.csrf)) {
      throw new OAuthError('access_denied', 'the form could not be verified: open the page again');
    }
    const connection = form.get('connection') ?? '';
    const provider = as.providers.get(connection);
    if (!provider) throw new OAuthError('invalid_request', 'no such connection');
    await connections.disconnect(connection, view.subject);
    as.logger.info({ event: 'connected-account', outcome: 'disconnected', subject: view.subject, connection, provider: provider.config.name }, 'account disconnected by its user');
    return message(200, `${provider.config.name} disconnected`, `The gateway no longer holds your ${escapeHtml(provider.config.name)} account (other replicas of the gateway let go of it within a minute). <a href="${escapeHtml(`${as.endpoints.connections}?view=${encodeURIComponent(id)}`)}">Back to your connections</a>.`);
  } catch (error) {
    return failurePage(as, error);
  }
}

async function findView(as: AuthorizationServer, request: Request, id: string): Promise<ConnectionsView | undefined> {
  const view = id === '' ? undefined : await readRecord<ConnectionsView>(as.store, KEYS.connectionsView(digest(id)));
  if (!view || !fromBoundBrowser(request, as.cookies, view.browser)) return undefined;
  return view;
}
