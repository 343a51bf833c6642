import { createHash } from 'node:crypto';
import { CONNECTED_ACCOUNT_PRESET_DEFAULTS } from './connected-account-presets.js';
import type { ConfigProblem } from './problems.js';
import type { ConnectedAccountPreset, ConnectedAccountUpstreamAuth, IdpTokenUpstreamAuth } from './types.js';
import { credentialHeaderProblem, type ReadText, type UpstreamAuthContext } from './upstream-auth-rules.js';
import { isHttpsOrLoopback, isUrl } from './urls.js';
import type { YamlSource } from './yaml-source.js';

/** `routes[].upstreamAuth.connectedAccount` as written (after schema validation). */
export interface ConnectedAccountDocument {
  preset?: ConnectedAccountPreset;
  name?: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  clientId: string;
  clientSecretFile: string;
  authMethod?: 'client_secret_basic' | 'client_secret_post';
  scopes?: string[];
  authorizationParameters?: Record<string, string>;
  header?: string;
  prefix?: string;
}

type Path = (string | number)[];

/**
 * Parameters of the authorization request the gateway sets itself (RFC 6749 §4.1.1, RFC 7636
 * §4.3): a configured value would replace the flow's own, its PKCE or its state.
 */
const FLOW_PARAMETERS = new Set(['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method']);

/**
 * The two modes that act with a credential of the user's own, obtained through the
 * authorization-server facade: the IdP's token kept at login (idpToken), or an account the user
 * connected on the gateway's page (connectedAccount). Both bind the credential to the facade's
 * subject, so both need the facade, its token encryption key (what they keep is sealed with
 * it), and a route that accepts no other issuer's tokens (a token from another IdP names a
 * subject the facade never logged in, and would never find a credential).
 */
function checkFacade(source: YamlSource, mode: 'idpToken' | 'connectedAccount', context: UpstreamAuthContext, at: Path, problems: ConfigProblem[]): void {
  const name = `routes.${context.index}.upstreamAuth.${mode}`;
  if (!context.facade) {
    problems.push(source.problemAt(at, `${name} needs authorizationServer: the gateway holds the user's credential only for users who log in through it`));
  } else if (!context.facade.keepsTokens) {
    problems.push(source.problemAt(at, `${name} needs authorizationServer.upstream.tokenEncryptionKeyFile: what it keeps for the user is sealed with that key`));
  }
  if (context.trustingIssuers.length > 0) {
    problems.push(source.problemAt(at, `${name} serves only the authorization server's own tokens, but route '${context.routeName}' also accepts tokens from ${context.trustingIssuers.join(', ')}: set those issuers' routes to leave it out`));
  }
}

export function loadIdpToken(source: YamlSource, context: UpstreamAuthContext, at: Path, problems: ConfigProblem[]): IdpTokenUpstreamAuth | undefined {
  const before = problems.length;
  checkFacade(source, 'idpToken', context, at, problems);
  return problems.length > before ? undefined : { mode: 'idpToken' };
}

export async function loadConnectedAccount(
  source: YamlSource,
  doc: ConnectedAccountDocument,
  context: UpstreamAuthContext,
  at: Path,
  readText: ReadText,
  problems: ConfigProblem[],
): Promise<ConnectedAccountUpstreamAuth | undefined> {
  const before = problems.length;
  const problem = (key: string | undefined, message: string) => problems.push(source.problemAt(key === undefined ? at : [...at, key], message));
  checkFacade(source, 'connectedAccount', context, at, problems);
  const preset = doc.preset ?? 'generic';
  const defaults = CONNECTED_ACCOUNT_PRESET_DEFAULTS[preset];
  const endpoints = { authorizationEndpoint: doc.authorizationEndpoint ?? defaults.authorizationEndpoint, tokenEndpoint: doc.tokenEndpoint ?? defaults.tokenEndpoint };
  for (const key of ['authorizationEndpoint', 'tokenEndpoint'] as const) {
    const value = endpoints[key];
    // The user's browser goes to the one, the gateway's client secret and the code to the other.
    if (value === undefined) problem(undefined, `routes.${context.index}.upstreamAuth.connectedAccount needs ${key} (preset ${preset} has none)`);
    else if (!isUrl(value) || !isHttpsOrLoopback(new URL(value)) || new URL(value).hash !== '') problem(key, `${key} '${value}' must be an https URL without a fragment (plain http only on loopback)`);
  }
  const header = doc.header ?? 'authorization';
  const headerProblem = credentialHeaderProblem(header, context);
  if (headerProblem) problem('header', headerProblem);
  for (const key of Object.keys(doc.authorizationParameters ?? {})) {
    if (FLOW_PARAMETERS.has(key)) problem('authorizationParameters', `authorizationParameters may not set '${key}': the gateway's flow sets it`);
  }
  const secretPath = [...at, 'clientSecretFile'];
  const read = await readText(secretPath, doc.clientSecretFile);
  const secret = read?.text.replace(/\r?\n$/, '');
  if (read && secret === '') problems.push(source.problemAt(secretPath, `${secretPath.join('.')} '${doc.clientSecretFile}' is empty`));
  if (problems.length > before || !read || !secret) return undefined;
  const authorizationEndpoint = endpoints.authorizationEndpoint!;
  const tokenEndpoint = endpoints.tokenEndpoint!;
  const scopes = doc.scopes ?? [];
  return {
    mode: 'connectedAccount',
    preset,
    name: doc.name ?? defaults.name ?? new URL(authorizationEndpoint).host,
    authorizationEndpoint,
    tokenEndpoint,
    clientId: doc.clientId,
    clientAuth: { method: doc.authMethod ?? defaults.authMethod, secret },
    scopes,
    authorizationParameters: { ...defaults.authorizationParameters, ...doc.authorizationParameters },
    header,
    prefix: doc.prefix ?? (header === 'authorization' ? 'Bearer ' : ''),
    connection: connectionName(tokenEndpoint, doc.clientId, scopes),
    files: [read.file],
  };
}

/**
 * What a user's connection is kept under: the provider's token endpoint, the gateway's client
 * there and the scopes, never a secret (rotating it keeps every connection) nor the route's
 * name (a rename keeps them; routes asking the same of the same provider share them).
 */
function connectionName(tokenEndpoint: string, clientId: string, scopes: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify([tokenEndpoint, clientId, [...scopes].sort()])).digest('base64url').slice(0, 22);
}
