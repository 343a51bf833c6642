import * as oidc from 'openid-client';
import { asOAuthError, pageError, redirectError, seeOther, type RedirectTarget } from './answers.js';
import { bindingCookie, readCookie } from './cookies.js';
import { OAuthError } from './errors.js';
import { singleValues } from './form.js';
import { parseScope } from './grants.js';
import type { PendingAuthorization } from './pending.js';
import { challengeProblem } from './pkce.js';
import { matchRedirectUri } from './redirect-uri.js';
import { digest, randomHandle } from './secrets.js';
import type { AuthorizationServer, ProtectedResource } from './service.js';

/** RFC 6749 §3.3 scope-token: printable ASCII without space, `"` or `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
/** The browser binding lasts as long as a pending authorization may. */

/**
 * GET /oauth/authorize (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1). The client and its redirect URI are
 * checked first: until both are known good, an error is shown on a gateway page and nothing is
 * redirected (RFC 6749 §4.1.2.1; RFC 9700 §4.11). After that, errors go back to the client with
 * `state` and `iss`. A valid request becomes a pending authorization in the store, and the
 * browser goes to the IdP to log in.
 */
export async function handleAuthorize(as: AuthorizationServer, request: Request): Promise<Response> {
  const url = new URL(request.url);
  // Set only once the redirect URI is validated: until then errors are shown on a page.
  let target: RedirectTarget | undefined;
  let params: Map<string, string>;
  try {
    for (const key of ['client_id', 'redirect_uri']) {
      if (url.searchParams.getAll(key).length > 1) throw new OAuthError('invalid_request', `the parameter '${key}' is given more than once`);
    }
    const client = await as.clients.find(url.searchParams.get('client_id') ?? undefined);
    const requested = url.searchParams.get('redirect_uri') ?? undefined;
    const redirectUri = matchRedirectUri(client.redirectUris, requested === '' ? undefined : requested);
    if (redirectUri === undefined) {
      throw new OAuthError('invalid_request', requested === undefined ? 'redirect_uri is required: this client registered several' : "redirect_uri is not one of the client's registered redirect URIs");
    }
    const states = url.searchParams.getAll('state');
    target = { redirectUri, ...(states.length === 1 && states[0] !== '' ? { state: states[0]! } : {}) };
    try {
      params = singleValues(url.searchParams);
    } catch (error) {
      return redirectError(asOAuthError(error), target, as.issuer);
    }
    const pending = await validated(as, params, url.searchParams.getAll('resource'), client, redirectUri, target.state);
    const cookie = readCookie(request.headers.get('cookie'), as.cookies.binding) ?? randomHandle();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const nonce = as.upstream.openId ? oidc.randomNonce() : undefined;
    const id = await as.pending.create({ ...pending, browser: digest(cookie), idpCodeVerifier: codeVerifier, ...(nonce ? { idpNonce: nonce } : {}) });
    let idpUrl: URL;
    try {
      idpUrl = await as.upstream.authorizationUrl({ state: id, codeVerifier, ...(nonce ? { nonce } : {}) });
    } catch (error) {
      await as.pending.finish(id);
      throw error;
    }
    return seeOther(idpUrl.href, { 'set-cookie': bindingCookie(as.cookies, cookie, as.secure) });
  } catch (error) {
    const failure = asOAuthError(error);
    if (failure.code === 'server_error') as.logger.error({ err: error }, 'authorization request failed');
    return target === undefined ? pageError(failure) : redirectError(failure, target, as.issuer);
  }
}

type ValidRequest = Omit<PendingAuthorization, 'browser' | 'idpCodeVerifier' | 'idpNonce' | 'user'>;

/** The rest of the request, once its answer can go back to the client. Throws OAuthError. */
async function validated(
  as: AuthorizationServer,
  params: Map<string, string>,
  resources: readonly string[],
  client: { clientId: string; clientName?: string },
  redirectUri: string,
  state: string | undefined,
): Promise<ValidRequest> {
  const responseType = params.get('response_type');
  // OAuth 2.1 §4.1.1: only the code flow (no implicit, no hybrid).
  if (responseType !== 'code') throw new OAuthError('unsupported_response_type', responseType === undefined ? 'response_type is required and must be code' : `response_type '${responseType.slice(0, 40)}' is not supported: use code`);
  const pkce = challengeProblem(params.get('code_challenge'), params.get('code_challenge_method'));
  if (pkce) throw new OAuthError('invalid_request', pkce);
  const resource = chooseResource(as, resources);
  const requested = parseScope(params.get('scope'));
  const bad = requested.find((scope) => !SCOPE_TOKEN.test(scope));
  if (bad !== undefined) throw new OAuthError('invalid_scope', 'scope holds a character RFC 6749 §3.3 does not allow');
  return {
    clientId: client.clientId,
    ...(client.clientName !== undefined ? { clientName: client.clientName } : {}),
    redirectUri,
    ...(state !== undefined ? { state } : {}),
    codeChallenge: params.get('code_challenge')!,
    resource: resource.resource,
    // MCP authorization §Scope Selection Strategy: without `scope`, what the route needs.
    requestedScopes: requested.length > 0 ? requested : [...(resource.routeScopes.length > 0 ? resource.routeScopes : resource.scopesSupported)],
  };
}

/**
 * RFC 8707 §2: the resource the token will be for, one of the routes' resource URLs, compared
 * exactly. Without one, the only route's (MCP clients send it; an older one may not); with
 * several routes, the client must say which.
 */
function chooseResource(as: AuthorizationServer, resources: readonly string[]): ProtectedResource {
  if (resources.length > 1) throw new OAuthError('invalid_target', 'one resource per authorization: ask again for each MCP server');
  if (resources.length === 0 || resources[0] === '') {
    if (as.resources.size === 1) return [...as.resources.values()][0]!;
    throw new OAuthError('invalid_target', 'resource is required (RFC 8707): this gateway serves several MCP servers');
  }
  const found = as.resources.get(resources[0]!);
  if (!found) throw new OAuthError('invalid_target', `'${resources[0]!.slice(0, 200)}' is not an MCP server behind this authorization server`);
  return found;
}
