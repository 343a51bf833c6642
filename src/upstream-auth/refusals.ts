import { Refusal } from '../errors.js';

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
