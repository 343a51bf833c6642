import { Refusal, type UrlElicitation } from '../errors.js';

/**
 * The refusals of routes[].upstreamAuth (their shapes are in src/errors.ts). None says why in
 * detail: the IdP's own error goes to the log, not to the client.
 */

/** The IdP will not exchange this token (RFC 6749 §5.2 invalid_grant…): the client must sign in again. */
export function exchangeRefused(): Refusal {
  return new Refusal('upstream_credential_refused', 'The token cannot be exchanged for the upstream: authorization is needed again');
}

/** The upstream refused a credential exchanged afresh for this token, too. */
export function exchangedCredentialRefused(): Refusal {
  return new Refusal('upstream_credential_refused', 'The upstream refused the credential obtained for this token: authorization is needed again');
}

/** The IdP could not be asked, or answered with anything but a token or a refusal of the user's token. */
export function credentialUnavailable(retryAfterSeconds: number): Refusal {
  return new Refusal('upstream_credential_unavailable', 'The upstream credential cannot be obtained now', { retryAfterSeconds });
}

/**
 * The upstream refused a credential on a request that is not re-sent (anything but a POST with a
 * body): the credential is forgotten, and the client may simply try again.
 */
export function credentialRenewed(): Refusal {
  return new Refusal('upstream_credential_unavailable', 'The upstream refused its credential; a fresh one will be used: retry', { retryAfterSeconds: 1 });
}

/** The upstream refused the static secret, read afresh, too. */
export function staticCredentialRejected(): Refusal {
  return new Refusal('upstream_credential_rejected', "The upstream refused the gateway's credential");
}

/**
 * routes[].upstreamAuth.idpToken: no usable IdP token is held for this user (they logged in
 * before the gateway kept them, the IdP issued none, it expired without a refresh token, or the
 * IdP refused the refresh): a fresh login at the gateway brings one.
 */
export function idpTokenMissing(): Refusal {
  return new Refusal('upstream_credential_refused', 'No identity provider token is held for this user: sign in again');
}

/**
 * idpToken, connectedAccount: a token the authorization-server facade did not issue names no
 * user it logged in (the config keeps other issuers off such routes; a reload in between is all
 * this guards).
 */
export function notTheFacadesToken(): Refusal {
  return new Refusal('upstream_credential_refused', 'This route takes only tokens the gateway issued: sign in through it');
}

/** The upstream refused the user's own IdP token, refreshed, too: a new login may bring one it takes. */
export function idpTokenRefused(): Refusal {
  return new Refusal('upstream_credential_refused', "The upstream refused the user's identity provider token: sign in again");
}

/**
 * routes[].upstreamAuth.connectedAccount: the user must connect (or reconnect) the account
 * first, at `elicitation.url`; answered as the request's protocol version asks
 * (src/mcp/url-elicitation.ts).
 */
export function accountNotConnected(elicitation: UrlElicitation): Refusal {
  return new Refusal('upstream_account_not_connected', `${elicitation.message}: open ${elicitation.url}, then retry`, {
    elicitation,
    data: { url: elicitation.url, elicitationId: elicitation.elicitationId },
  });
}
