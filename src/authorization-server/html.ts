/**
 * The authorization server's few HTML pages (consent, errors): plain server-rendered documents,
 * no script, one inline style. Everything interpolated goes through `escapeHtml`, so a client
 * name or a description from a client's request can never become markup.
 */

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Safe in text and in double- or single-quoted attribute values (HTML §13.1.2.3, §13.5). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}' +
  'h1{font-size:1.4rem}code{background:#f2f2f2;padding:0 .2rem;word-break:break-all}' +
  'ul{padding-left:1.2rem}.actions{display:flex;gap:1rem;margin-top:1.5rem}' +
  'button{font-size:1rem;padding:.5rem 1.2rem;border-radius:.3rem;border:1px solid #555;cursor:pointer}' +
  'button.approve{background:#0b57d0;color:#fff;border-color:#0b57d0}.new{font-weight:bold}' +
  'button:focus-visible{outline:3px solid #f29900;outline-offset:2px}';

/** A whole page: `title` and `body` are already escaped markup; `referrer` as its header says. */
export function page(title: string, body: string, referrer: 'no-referrer' | 'same-origin' = 'no-referrer'): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="${referrer}">
<title>${title}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/**
 * Headers every page carries: no framing (clickjacking, RFC 9700 §4.16), no script, forms only
 * back to this origin, nothing cached (a consent page holds a CSRF token), no referrer (its URL
 * names a pending authorization).
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

/** The page shown for an error that must not go back to the client (no validated redirect URI). */
export function errorPage(code: string, description: string): string {
  return page(
    'Authorization failed',
    `<h1>Authorization failed</h1>
<p>${escapeHtml(description)}</p>
<p>Error: <code>${escapeHtml(code)}</code></p>
<p>You can close this window and start again from your application.</p>`,
  );
}
