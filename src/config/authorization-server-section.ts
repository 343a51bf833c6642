import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { JWK } from 'jose';
import { durationOr, parseDuration } from './duration.js';
import type { ConfigProblem } from './problems.js';
import { redirectUriProblem } from './redirect-uris.js';
import { checkSigningKeys } from './signing-keys.js';
import { DEFAULTS, type AuthorizationServerConfig, type ClaimValue, type UpstreamIdpConfig, type UpstreamPreset } from './types.js';
import { UPSTREAM_PRESET_DEFAULTS } from './upstream-presets.js';
import { isHttpsOrLoopback, isUrl } from './urls.js';
import type { YamlSource } from './yaml-source.js';

/** The `authorizationServer` section as written (after schema validation). */
export interface AuthorizationServerDocument {
  issuer?: string;
  signingKeys?: { file: string };
  upstream: {
    preset?: UpstreamPreset;
    issuer?: string;
    authorizationEndpoint?: string;
    tokenEndpoint?: string;
    userinfoEndpoint?: string;
    clientId: string;
    clientSecret?: string;
    clientSecretFile?: string;
    scopes?: string[];
    audience?: string;
    subjectClaim?: string;
    tokenEncryptionKeyFile?: string;
  };
  registration?: { dynamic?: boolean; metadataDocuments?: boolean; allowPrivateNetworks?: boolean; clientTtl?: string };
  clients?: { clientId: string; clientName?: string; redirectUris: string[] }[];
  tokens?: { accessTokenTtl?: string; refreshTokenTtl?: string; claims?: string[] };
  consent?: { rememberFor?: string };
  grants: { scopes: string[]; when?: { claims?: Record<string, ClaimValue | ClaimValue[]>; subjects?: string[] } }[];
}

type Path = (string | number)[];

/**
 * The authorizationServer section: the rules a schema cannot say, checked with every problem at
 * its line, and its key and secret files read now (a missing file is a config error, not a
 * failure at the first login). Called again on every reload, so a new signing key file is read
 * then: keys rotate without a restart.
 */
export async function loadAuthorizationServer(
  source: YamlSource,
  configFile: string,
  doc: AuthorizationServerDocument,
  context: { publicUrl: string | undefined; compatMetadata: boolean; issuers: readonly string[] },
  problems: ConfigProblem[],
): Promise<AuthorizationServerConfig | undefined> {
  const before = problems.length;
  const problem = (path: Path, message: string) => problems.push(source.problemAt(['authorizationServer', ...path], message));
  checkIssuer(doc, context, problem);
  checkUpstream(doc.upstream, problem);
  doc.clients?.forEach((client, index) => {
    if (doc.clients!.findIndex((other) => other.clientId === client.clientId) !== index) problem(['clients', index, 'clientId'], `client id '${client.clientId}' is listed twice`);
    // A client id that is an https URL names a Client ID Metadata Document: it cannot also be configured.
    if (/^https?:\/\//i.test(client.clientId)) problem(['clients', index, 'clientId'], `client id '${client.clientId}' is a URL: such ids name Client ID Metadata Documents (registration.metadataDocuments)`);
    client.redirectUris.forEach((uri, at) => {
      const why = redirectUriProblem(uri, 'native');
      if (why) problem(['clients', index, 'redirectUris', at], `redirect URI '${uri}' ${why}`);
    });
  });
  // RFC 9068 §2.2 and RFC 7519 §4.1: the gateway writes these itself; an IdP's value must not replace them.
  doc.tokens?.claims?.forEach((claim, index) => {
    if (RESERVED_CLAIMS.has(claim)) problem(['tokens', 'claims', index], `'${claim}' is a claim the gateway sets in its own tokens; name an IdP claim such as groups or email`);
  });
  const durations: [Path, string | undefined][] = [
    [['tokens', 'accessTokenTtl'], doc.tokens?.accessTokenTtl],
    [['tokens', 'refreshTokenTtl'], doc.tokens?.refreshTokenTtl],
    [['registration', 'clientTtl'], doc.registration?.clientTtl],
    [['consent', 'rememberFor'], doc.consent?.rememberFor],
  ];
  for (const [path, value] of durations) {
    if (value !== undefined && parseDuration(value) === 0) problem(path, `authorizationServer.${path.join('.')} must be longer than 0`);
  }
  const read = (path: Path, name: string) => readConfigFile(configFile, name).catch((error: Error) => void problem(path, `cannot read authorizationServer.${path.join('.')} '${name}': ${error.message}`));
  const upstream = doc.upstream;
  if ((upstream.clientSecret === undefined) === (upstream.clientSecretFile === undefined)) {
    problem(['upstream'], 'authorizationServer.upstream needs exactly one of clientSecret and clientSecretFile');
  }
  const [keysText, secretText, encryptionText] = await Promise.all([
    doc.signingKeys ? read(['signingKeys', 'file'], doc.signingKeys.file) : undefined,
    upstream.clientSecretFile !== undefined ? read(['upstream', 'clientSecretFile'], upstream.clientSecretFile) : undefined,
    upstream.tokenEncryptionKeyFile !== undefined ? read(['upstream', 'tokenEncryptionKeyFile'], upstream.tokenEncryptionKeyFile) : undefined,
  ]);
  const signingKeys = keysText === undefined ? undefined : await checkSigningKeys(keysText, (message) => problem(['signingKeys', 'file'], message));
  const encryptionKey = encryptionText === undefined ? undefined : checkEncryptionKey(encryptionText, (message) => problem(['upstream', 'tokenEncryptionKeyFile'], message));
  if (problems.length > before) return undefined;
  return build(doc, signingKeys, upstream.clientSecret ?? secretText!.replace(/\r?\n$/, ''), encryptionKey);
}

const RESERVED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'scope', 'auth_time', 'cnf', 'act', 'azp', 'typ']);

function checkIssuer(doc: AuthorizationServerDocument, context: { publicUrl: string | undefined; compatMetadata: boolean; issuers: readonly string[] }, problem: (path: Path, message: string) => void): void {
  if (context.compatMetadata) {
    problem([], 'authorizationServer and authorizationServerMetadata both serve /.well-known/oauth-authorization-server: keep one');
  }
  const own = doc.issuer ?? (context.publicUrl === undefined ? undefined : new URL(context.publicUrl).origin);
  if (own !== undefined && context.issuers.some((issuer) => issuer.replace(/\/$/, '') === own)) {
    problem(doc.issuer === undefined ? [] : ['issuer'], `the authorization server's issuer '${own}' is also listed in issuers: the gateway trusts its own tokens without an entry`);
  }
  if (doc.issuer === undefined) return;
  const url = isUrl(doc.issuer) ? new URL(doc.issuer) : undefined;
  // RFC 8414 §2: an https URL with no query or fragment.
  if (!url || url.search || url.hash || doc.issuer.endsWith('/')) {
    problem(['issuer'], `issuer '${doc.issuer}' must be a URL without query, fragment or trailing slash`);
  } else if (!isHttpsOrLoopback(url)) {
    problem(['issuer'], `issuer '${doc.issuer}' must use https (plain http only on loopback)`);
  } else if (context.publicUrl === undefined || url.origin !== new URL(context.publicUrl).origin) {
    // The facade's endpoints are served by this gateway, under its own origin.
    problem(['issuer'], `issuer '${doc.issuer}' must be on publicUrl's origin: the gateway serves the authorization server itself`);
  }
}

function checkUpstream(upstream: AuthorizationServerDocument['upstream'], problem: (path: Path, message: string) => void): void {
  const preset = upstream.preset ?? 'generic';
  const endpoints = ['issuer', 'authorizationEndpoint', 'tokenEndpoint', 'userinfoEndpoint'] as const;
  for (const key of endpoints) {
    const value = upstream[key];
    if (value !== undefined && (!isUrl(value) || !isHttpsOrLoopback(new URL(value)))) {
      problem(['upstream', key], `upstream.${key} '${value}' must be an https URL (plain http only on loopback)`);
    }
  }
  const plain = upstream.issuer === undefined;
  if (plain && UPSTREAM_PRESET_DEFAULTS[preset].endpoints === undefined) {
    const missing = endpoints.slice(1).filter((key) => upstream[key] === undefined);
    if (missing.length > 0) problem(['upstream'], `authorizationServer.upstream needs issuer (OpenID Connect or RFC 8414 discovery) or, for plain OAuth 2.0, ${missing.join(', ')}`);
  }
  if (preset === 'github' && upstream.issuer !== undefined) problem(['upstream', 'issuer'], 'preset github is plain OAuth 2.0: give its endpoints, not an issuer');
  // Entra's multi-tenant endpoints have no one issuer an ID token could be checked against.
  if (preset === 'entra' && upstream.issuer !== undefined && /\/(common|organizations|consumers)(\/|$)/.test(upstream.issuer)) {
    problem(['upstream', 'issuer'], `preset entra needs a tenant's issuer (https://login.microsoftonline.com/<tenant id>/v2.0), not '${upstream.issuer}'`);
  }
}

function checkEncryptionKey(text: string, report: (message: string) => void): string | undefined {
  const encoded = text.trim();
  const bytes = Buffer.from(encoded, 'base64url');
  if (bytes.length !== 32 || bytes.toString('base64url') !== encoded.replace(/=+$/, '')) {
    report('tokenEncryptionKeyFile must hold 32 random bytes, base64url-encoded (e.g. `openssl rand 32 | basenc --base64url`)');
    return undefined;
  }
  return bytes.toString('base64url');
}

function readConfigFile(configFile: string, name: string): Promise<string> {
  return readFile(resolve(dirname(configFile), name), 'utf8');
}

function build(doc: AuthorizationServerDocument, signingKeys: JWK[] | undefined, clientSecret: string, tokenEncryptionKey: string | undefined): AuthorizationServerConfig {
  const preset = doc.upstream.preset ?? 'generic';
  const defaults = UPSTREAM_PRESET_DEFAULTS[preset];
  const up = doc.upstream;
  const upstream: UpstreamIdpConfig = {
    preset,
    ...(up.issuer !== undefined ? { issuer: up.issuer } : {}),
    ...optional('authorizationEndpoint', up.authorizationEndpoint ?? (up.issuer === undefined ? defaults.endpoints?.authorization : undefined)),
    ...optional('tokenEndpoint', up.tokenEndpoint ?? (up.issuer === undefined ? defaults.endpoints?.token : undefined)),
    ...optional('userinfoEndpoint', up.userinfoEndpoint ?? (up.issuer === undefined ? defaults.endpoints?.userinfo : undefined)),
    clientId: up.clientId,
    clientSecret,
    scopes: up.scopes ?? defaults.scopes,
    ...optional('audience', up.audience),
    subjectClaim: up.subjectClaim ?? defaults.subjectClaim,
    ...optional('tokenEncryptionKey', tokenEncryptionKey),
  };
  return {
    ...optional('issuer', doc.issuer),
    ...(signingKeys ? { signingKeys } : {}),
    upstream,
    registration: {
      dynamic: doc.registration?.dynamic ?? true,
      metadataDocuments: doc.registration?.metadataDocuments ?? true,
      allowPrivateNetworks: doc.registration?.allowPrivateNetworks ?? false,
      clientTtlMs: durationOr(doc.registration?.clientTtl, DEFAULTS.registeredClientTtlMs),
    },
    clients: (doc.clients ?? []).map((c) => ({ clientId: c.clientId, ...optional('clientName', c.clientName), redirectUris: c.redirectUris })),
    tokens: {
      accessTokenTtlMs: durationOr(doc.tokens?.accessTokenTtl, DEFAULTS.accessTokenTtlMs),
      refreshTokenTtlMs: durationOr(doc.tokens?.refreshTokenTtl, DEFAULTS.refreshTokenTtlMs),
      claims: doc.tokens?.claims ?? [],
    },
    consent: { rememberForMs: durationOr(doc.consent?.rememberFor, DEFAULTS.consentTtlMs) },
    grants: doc.grants.map((grant) => ({ scopes: grant.scopes, ...(grant.when ? { when: grant.when } : {}) })),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
