import { randomBytes } from 'node:crypto';
import { redirectUriProblem } from '../config/redirect-uris.js';
import { asOAuthError, jsonAnswer, jsonError } from './answers.js';
import type { ClientRecord, GrantType } from './client-record.js';
import { OAuthError } from './errors.js';
import { readBody } from './form.js';
import type { AuthorizationServer } from './service.js';

const GRANT_TYPES: readonly string[] = ['authorization_code', 'refresh_token'];

/**
 * The client a registration request describes (RFC 7591 §2), or an OAuthError with the RFC 7591
 * §3.2.2 code. Public clients only: `token_endpoint_auth_method` is `none` (when left out, RFC
 * 7591's default client_secret_basic is replaced by none, as §3.2.1 allows, and the answer says
 * so); redirect URIs as redirectUriProblem says; the code flow, with refresh tokens if asked.
 */
function clientFromRegistration(body: unknown, clientId: string): ClientRecord {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new OAuthError('invalid_client_metadata', 'the registration must be a JSON object');
  const doc = body as Record<string, unknown>;
  const applicationType = doc.application_type ?? 'web';
  if (applicationType !== 'web' && applicationType !== 'native') throw new OAuthError('invalid_client_metadata', "application_type must be 'web' or 'native'");
  const uris = doc.redirect_uris;
  if (!Array.isArray(uris) || uris.length === 0 || !uris.every((u) => typeof u === 'string')) {
    throw new OAuthError('invalid_redirect_uri', 'redirect_uris is required: a list of URIs');
  }
  if (uris.length > 10) throw new OAuthError('invalid_redirect_uri', 'at most 10 redirect URIs');
  for (const uri of uris as string[]) {
    const why = redirectUriProblem(uri, applicationType);
    if (why) throw new OAuthError('invalid_redirect_uri', `redirect URI '${uri.slice(0, 200)}' ${why}`);
  }
  const method = doc.token_endpoint_auth_method ?? 'none';
  if (method !== 'none') throw new OAuthError('invalid_client_metadata', `token_endpoint_auth_method '${String(method).slice(0, 40)}' is not supported: clients are public (none) and use PKCE`);
  const grantTypes = doc.grant_types ?? ['authorization_code'];
  if (!Array.isArray(grantTypes) || !grantTypes.every((g) => GRANT_TYPES.includes(g as string)) || !grantTypes.includes('authorization_code')) {
    throw new OAuthError('invalid_client_metadata', 'grant_types must include authorization_code, and may add refresh_token; nothing else');
  }
  const responseTypes = doc.response_types ?? ['code'];
  if (!Array.isArray(responseTypes) || responseTypes.length !== 1 || responseTypes[0] !== 'code') {
    throw new OAuthError('invalid_client_metadata', 'response_types must be [code]');
  }
  const name = doc.client_name;
  if (name !== undefined && (typeof name !== 'string' || name.length > 200)) throw new OAuthError('invalid_client_metadata', 'client_name must be a string of at most 200 characters');
  return {
    clientId,
    ...(typeof name === 'string' && name.trim() !== '' ? { clientName: name } : {}),
    redirectUris: uris as string[],
    grantTypes: [...new Set(grantTypes as GrantType[])],
    applicationType,
    registeredBy: 'dynamic',
  };
}

/** POST /oauth/register (RFC 7591 §3): 201 with the client's metadata as registered. */
export async function handleRegistration(as: AuthorizationServer, request: Request): Promise<Response> {
  try {
    if (!as.config.registration.dynamic) throw new OAuthError('invalid_request', 'dynamic client registration is off on this server');
    const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') throw new OAuthError('invalid_client_metadata', 'the registration must be application/json');
    let body: unknown;
    try {
      body = JSON.parse(await readBody(request));
    } catch (error) {
      if (error instanceof OAuthError) throw error;
      throw new OAuthError('invalid_client_metadata', 'the registration is not JSON');
    }
    const client = clientFromRegistration(body, randomBytes(18).toString('base64url'));
    await as.clients.register(client);
    as.logger.info({ event: 'registration', client: client.clientId, name: client.clientName, redirectUris: client.redirectUris }, 'client registered');
    return jsonAnswer(
      {
        client_id: client.clientId,
        client_id_issued_at: Math.floor(Date.now() / 1000),
        ...(client.clientName !== undefined ? { client_name: client.clientName } : {}),
        redirect_uris: client.redirectUris,
        grant_types: client.grantTypes,
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        application_type: client.applicationType,
      },
      201,
    );
  } catch (error) {
    const failure = asOAuthError(error);
    if (failure.code === 'server_error') as.logger.error({ err: error }, 'registration failed');
    return jsonError(failure, request);
  }
}
