/**
 * Every way the authorization server refuses, as a closed set of OAuth error codes: RFC 6749
 * §4.1.2.1 (authorization responses) and §5.2 (token endpoint), RFC 7591 §3.2.2 (registration),
 * RFC 7009 §2.2.1 (revocation) and RFC 8707 §2 (`invalid_target`). The code fixes the HTTP status;
 * where the error is shown (JSON, a redirect to the client, or a gateway page) is decided by the
 * endpoint that catches it (answers.ts), never by the code that throws it.
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'unsupported_token_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'access_denied'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata';

export class OAuthError extends Error {
  override readonly name = 'OAuthError';

  constructor(
    readonly code: OAuthErrorCode,
    /** Shown to the client (and the user on a page): says what was wrong, never a secret. */
    readonly description: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${description}`, options);
  }

  get status(): number {
    return oauthErrorStatus(this.code);
  }
}

function oauthErrorStatus(code: OAuthErrorCode): number {
  switch (code) {
    case 'invalid_client':
      // RFC 6749 §5.2: 401 when the client tried to authenticate and failed.
      return 401;
    case 'server_error':
      return 500;
    case 'temporarily_unavailable':
      return 503;
    case 'access_denied':
      return 403;
    case 'invalid_request':
    case 'invalid_grant':
    case 'unauthorized_client':
    case 'unsupported_grant_type':
    case 'unsupported_response_type':
    case 'unsupported_token_type':
    case 'invalid_scope':
    case 'invalid_target':
    case 'invalid_redirect_uri':
    case 'invalid_client_metadata':
      return 400;
  }
}

/** The IdP could not be reached or did not answer in time: worth retrying (RFC 6749 §4.1.2.1). */
export function idpUnavailable(cause: unknown): OAuthError {
  return new OAuthError('temporarily_unavailable', 'the identity provider cannot be reached; try again shortly', { cause });
}
