import { asOAuthError, jsonError, NO_STORE } from './answers.js';
import { OAuthError } from './errors.js';
import { readForm } from './form.js';
import type { AuthorizationServer } from './service.js';

/**
 * POST /oauth/revoke (RFC 7009). A refresh token revokes its whole family (§2.1: "SHOULD also
 * invalidate all access tokens based on the same authorization grant"; the access tokens
 * already issued are short-lived JWTs and expire on their own). An unknown, expired or
 * already-rotated token, or an access token, is answered 200 all the same (§2.2: the client
 * cannot tell, and need not care). A token of another client is refused (§2.1).
 */
export async function handleRevoke(as: AuthorizationServer, request: Request): Promise<Response> {
  try {
    if (request.headers.get('authorization') !== null) throw new OAuthError('invalid_client', 'this authorization server has public clients only: send client_id in the body, no credentials');
    const form = await readForm(request);
    const token = form.get('token');
    if (token === undefined) throw new OAuthError('invalid_request', 'token is required');
    const client = await as.clients.find(form.get('client_id'));
    const outcome = await as.refreshTokens.revoke(token, client.clientId);
    if (outcome === 'other-client') throw new OAuthError('unauthorized_client', 'the token was issued to another client');
    if (outcome === 'revoked') as.logger.info({ event: 'revocation', client: client.clientId }, 'refresh token family revoked');
    return new Response(null, { status: 200, headers: NO_STORE });
  } catch (error) {
    const failure = asOAuthError(error);
    if (failure.code === 'server_error') as.logger.error({ err: error }, 'revocation failed');
    return jsonError(failure, request);
  }
}
