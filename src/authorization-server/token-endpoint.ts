import { asOAuthError, jsonAnswer, jsonError } from './answers.js';
import type { ClientRecord } from './client-record.js';
import { OAuthError } from './errors.js';
import { readFormParams, singleValues } from './form.js';
import { parseScope } from './grants.js';
import { verifierMatches } from './pkce.js';
import type { AuthorizationServer } from './service.js';
import { issueAccessToken, type AccessTokenGrant } from './tokens.js';

/**
 * POST /oauth/token (RFC 6749 §3.2, OAuth 2.1 §3.2): the authorization_code and refresh_token
 * grants for public clients (client_id in the body, no secret: RFC 6749 §2.3, §3.2.1). Every
 * error is RFC 6749 §5.2 JSON with Cache-Control: no-store, and nothing is issued on any error.
 */
export async function handleToken(as: AuthorizationServer, request: Request): Promise<Response> {
  try {
    // Public clients only: a client that authenticates (Basic) is one this server does not know.
    if (request.headers.get('authorization') !== null) throw new OAuthError('invalid_client', 'this authorization server has public clients only: send client_id in the body, no credentials');
    const params = await readFormParams(request);
    if (params.getAll('resource').length > 1) throw new OAuthError('invalid_target', 'one resource per token request (RFC 8707 §2)');
    const form = singleValues(params);
    const grantType = form.get('grant_type');
    const client = await as.clients.find(form.get('client_id'));
    switch (grantType) {
      case 'authorization_code':
        return await codeGrant(as, form, client);
      case 'refresh_token':
        return await refreshGrant(as, form, client);
      case undefined:
        throw new OAuthError('invalid_request', 'grant_type is required');
      default:
        throw new OAuthError('unsupported_grant_type', `grant_type '${grantType.slice(0, 60)}' is not supported: use authorization_code or refresh_token`);
    }
  } catch (error) {
    const failure = asOAuthError(error);
    if (failure.code === 'server_error') as.logger.error({ err: error }, 'token request failed');
    return jsonError(failure, request);
  }
}

/** RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707 §2.2. */
async function codeGrant(as: AuthorizationServer, form: Map<string, string>, client: ClientRecord): Promise<Response> {
  const code = form.get('code');
  const verifier = form.get('code_verifier');
  if (code === undefined) throw new OAuthError('invalid_request', 'code is required');
  if (verifier === undefined) throw new OAuthError('invalid_request', 'code_verifier is required (PKCE)');
  const { grant, issued } = await as.codes.redeem(code, (familyId) => as.refreshTokens.revokeFamily(familyId));
  if (grant.clientId !== client.clientId) throw new OAuthError('invalid_grant', 'the authorization code was issued to another client');
  // RFC 6749 §4.1.3: the same redirect_uri as in the authorization request, when it was sent there.
  const redirectUri = form.get('redirect_uri');
  if (redirectUri !== undefined && redirectUri !== grant.redirectUri) throw new OAuthError('invalid_grant', 'redirect_uri differs from the authorization request');
  if (!verifierMatches(verifier, grant.codeChallenge)) throw new OAuthError('invalid_grant', 'code_verifier does not match the code_challenge (PKCE)');
  const resource = form.get('resource');
  if (resource !== undefined && resource !== grant.resource) throw new OAuthError('invalid_target', 'resource differs from the one authorized');
  const claims = grant.claims ? { claims: grant.claims } : {};
  const tokenGrant: AccessTokenGrant = { issuer: as.issuer, subject: grant.subject, resource: grant.resource, clientId: client.clientId, scopes: grant.scopes, authTime: grant.authTime, ...claims };
  const refresh = client.grantTypes.includes('refresh_token')
    ? await as.refreshTokens.start({ clientId: client.clientId, subject: grant.subject, resource: grant.resource, scopes: grant.scopes, authTime: grant.authTime, ...claims })
    : undefined;
  await issued(refresh?.familyId ?? '');
  return tokenResponse(as, tokenGrant, refresh?.token);
}

/** RFC 6749 §6: rotation (OAuth 2.1 §4.3.1); a narrower scope may be asked, never a wider one. */
async function refreshGrant(as: AuthorizationServer, form: Map<string, string>, client: ClientRecord): Promise<Response> {
  const token = form.get('refresh_token');
  if (token === undefined) throw new OAuthError('invalid_request', 'refresh_token is required');
  if (!client.grantTypes.includes('refresh_token')) throw new OAuthError('unauthorized_client', 'this client did not register the refresh_token grant');
  const asked = parseScope(form.get('scope'));
  const resource = form.get('resource');
  // Checked before the token rotates: a refused request leaves the client its token.
  const { family, token: next, familyId } = await as.refreshTokens.rotate(token, client.clientId, (held) => {
    const outside = asked.filter((scope) => !held.scopes.includes(scope));
    if (outside.length > 0) throw new OAuthError('invalid_scope', `not granted to this refresh token: ${outside.join(' ').slice(0, 200)}`);
    if (resource !== undefined && resource !== held.resource) throw new OAuthError('invalid_target', 'resource differs from the one authorized');
  });
  // A route that sends the user's own IdP token upstream (upstreamAuth.idpToken) can do nothing
  // for a user it holds none for: the family ends, so the client logs the user in again, which
  // brings one, rather than refreshing into a 401 it cannot act on.
  if (as.idpTokenResources.has(family.resource) && as.vault && !(await as.vault.read(family.subject))) {
    await as.refreshTokens.revokeFamily(familyId);
    throw new OAuthError('invalid_grant', "the identity provider's tokens for this user are gone: sign in again");
  }
  const scopes = asked.length > 0 ? asked : family.scopes;
  const grant: AccessTokenGrant = {
    issuer: as.issuer,
    subject: family.subject,
    resource: family.resource,
    clientId: client.clientId,
    scopes,
    ...(family.authTime !== undefined ? { authTime: family.authTime } : {}),
    ...(family.claims ? { claims: family.claims } : {}),
  };
  return tokenResponse(as, grant, next);
}

async function tokenResponse(as: AuthorizationServer, grant: AccessTokenGrant, refreshToken: string | undefined): Promise<Response> {
  const { token, expiresIn } = await issueAccessToken(as.keys, grant, as.config.tokens.accessTokenTtlMs);
  as.logger.info({ event: 'token', client: grant.clientId, subject: grant.subject, scopes: grant.scopes, resource: grant.resource, refresh: refreshToken !== undefined }, 'access token issued');
  // RFC 6749 §5.1; `scope` always, since it may differ from what was asked (§3.3).
  return jsonAnswer({
    access_token: token,
    token_type: 'Bearer',
    expires_in: expiresIn,
    scope: grant.scopes.join(' '),
    ...(refreshToken !== undefined ? { refresh_token: refreshToken } : {}),
  });
}
