import type { AuthorizationServer } from './service.js';

/**
 * RFC 8414 §2 metadata, built once per config. What it promises is what the endpoints do: the
 * code flow with PKCE S256 only (OAuth 2.1), public clients (`none`), RFC 9207 `iss` in every
 * authorization response, RFC 8707 resources, RFC 7591 registration and Client ID Metadata
 * Documents when on (MCP authorization 2025-11-25 §Client Registration Approaches).
 */
export function authorizationServerMetadata(as: AuthorizationServer): Record<string, unknown> {
  const { endpoints, config } = as;
  const scopes = [...new Set([...as.resources.values()].flatMap((r) => r.scopesSupported))];
  return {
    issuer: as.issuer,
    authorization_endpoint: endpoints.authorize,
    token_endpoint: endpoints.token,
    ...(config.registration.dynamic ? { registration_endpoint: endpoints.register } : {}),
    revocation_endpoint: endpoints.revoke,
    jwks_uri: endpoints.jwks,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    ...(scopes.length > 0 ? { scopes_supported: scopes } : {}),
    authorization_response_iss_parameter_supported: true,
    ...(config.registration.metadataDocuments ? { client_id_metadata_document_supported: true } : {}),
  };
}
