import { escapeHtml, page, PAGE_HEADERS } from './html.js';

/** Everything the consent page shows and posts back. */
export interface ConsentView {
  readonly clientId: string;
  readonly clientName?: string;
  readonly redirectUri: string;
  /** Who signed in at the IdP. */
  readonly user: string;
  readonly scopes: readonly string[];
  /** The scopes this user has not approved for this client before. */
  readonly newScopes: readonly string[];
  readonly requestId: string;
  readonly csrfToken: string;
  readonly formAction: string;
}

/**
 * Where the answer goes, as a person can judge it: the host of a web or loopback redirect URI,
 * or an app's private-use scheme. The name a client gives itself proves nothing; this does.
 */
export function redirectDestination(redirectUri: string): string {
  const url = new URL(redirectUri);
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.host : `${url.protocol} (an app on this device)`;
}

/**
 * The gateway's consent page (MCP authorization §Security Considerations, confused deputy): names
 * the client, its id, where the answer is sent and each scope, then a real form with two
 * buttons. Works without script, with a keyboard and a screen reader (headings, a list, a
 * labelled group of buttons); every value is escaped.
 */
export function consentPage(view: ConsentView): string {
  const name = escapeHtml(view.clientName ?? view.clientId);
  const scopes = view.scopes
    .map((scope) => `<li><code>${escapeHtml(scope)}</code>${view.newScopes.includes(scope) ? ' <span class="new">(new)</span>' : ''}</li>`)
    .join('\n');
  return page(
    `Allow ${name}?`,
    `<h1>Allow ${name} to use MCP servers as you?</h1>
<p>You are signed in as <strong>${escapeHtml(view.user)}</strong>.</p>
<dl>
<dt>Application</dt>
<dd>${name} (client id <code>${escapeHtml(view.clientId)}</code>). An application names itself: allow it only if you started this sign-in.</dd>
<dt>Answer sent to</dt>
<dd><code>${escapeHtml(redirectDestination(view.redirectUri))}</code></dd>
</dl>
<h2 id="scopes">It asks for these permissions</h2>
<ul aria-labelledby="scopes">
${scopes}
</ul>
<form method="post" action="${escapeHtml(view.formAction)}">
<input type="hidden" name="request" value="${escapeHtml(view.requestId)}">
<input type="hidden" name="csrf" value="${escapeHtml(view.csrfToken)}">
<div class="actions" role="group" aria-label="Your decision">
<button type="submit" name="decision" value="approve" class="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</div>
</form>`,
    'same-origin',
  );
}

/**
 * The page's headers: no framing, no script; the form may post only here, and the redirect that
 * follows the post may go only to the client (browsers apply form-action to it, CSP Level 3 §6.3.1).
 * Referrer policy `same-origin`, not the other pages' `no-referrer`: under `no-referrer` a browser
 * sends `Origin: null` with the form's own POST (the Fetch standard's "serializing a request origin"), which
 * the same-origin check in consent.ts must refuse. `same-origin` still sends the page's URL (which
 * names the pending authorization) to no other origin, the client's redirect URI included.
 */
export function consentHeaders(redirectUri: string): Record<string, string> {
  const url = new URL(redirectUri);
  const destination = url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : url.protocol;
  return {
    ...PAGE_HEADERS,
    'referrer-policy': 'same-origin',
    'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${destination}; frame-ancestors 'none'; base-uri 'none'`,
  };
}
