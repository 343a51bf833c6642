import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { importPKCS8 } from 'jose';
import type { ConfigProblem } from './problems.js';
import type { AsymmetricAlgorithm, TokenEndpointAuth, UpstreamAuthConfig } from './types.js';
import { isHttpsOrLoopback, isUrl } from './urls.js';
import { credentialHeaderProblem, type ReadText, type UpstreamAuthContext } from './upstream-auth-rules.js';
import { loadConnectedAccount, loadIdpToken, type ConnectedAccountDocument } from './user-credential-section.js';
import type { YamlSource } from './yaml-source.js';

/** `routes[].upstreamAuth` as written (after schema validation): exactly one mode is meant to be set. */
export interface UpstreamAuthDocument {
  static?: { header: string; valueFile: string; prefix?: string };
  tokenExchange?: {
    issuer?: string;
    tokenEndpoint?: string;
    clientId: string;
    clientSecretFile?: string;
    authMethod?: 'client_secret_basic' | 'client_secret_post';
    privateKeyFile?: string;
    algorithm?: AsymmetricAlgorithm;
    keyId?: string;
    audience?: string;
    resource?: string;
    scopes?: string[];
    preset?: 'rfc8693' | 'entra-obo';
    cacheKeyFile?: string;
  };
  idpToken?: Record<string, never>;
  connectedAccount?: ConnectedAccountDocument;
}

const MODES = ['static', 'tokenExchange', 'idpToken', 'connectedAccount'] as const;

/**
 * A header value made of a prefix and a secret file's text: one trailing newline is dropped (as
 * for every secret file); what is left must be visible ASCII with inner spaces only, since a CR,
 * LF or NUL would split or end the request head, and leading or trailing blanks would be lost on
 * the way. Shared with the re-read at run time (src/upstream-auth/static.ts).
 */
export function staticCredentialValue(text: string, prefix: string): { readonly value: string } | { readonly problem: string } {
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') return { problem: 'is empty' };
  const value = prefix + secret;
  if (!/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value)) return { problem: 'holds characters a header value cannot carry (only visible ASCII, inner spaces, one trailing newline)' };
  return { value };
}

/**
 * Each route's upstreamAuth, checked for what the schema cannot say and with its files read now,
 * so a missing file or an unusable key is a problem at its line, not a failure at the first
 * request. Undefined for a route without the section (or with problems, which are reported).
 */
export async function loadUpstreamAuth(source: YamlSource, configFile: string, doc: UpstreamAuthDocument | undefined, context: UpstreamAuthContext, problems: ConfigProblem[]): Promise<UpstreamAuthConfig | undefined> {
  if (doc === undefined) return undefined;
  const at = ['routes', context.index, 'upstreamAuth'];
  const given = MODES.filter((mode) => doc[mode] !== undefined);
  if (given.length !== 1) {
    const where = given.length === 0 ? at : [...at, given[1]!];
    problems.push(source.problemAt(where, `routes.${context.index}.upstreamAuth takes exactly one mode: ${MODES.slice(0, -1).join(', ')} or ${MODES.at(-1)}`));
    return undefined;
  }
  const readText = async (path: (string | number)[], name: string): Promise<{ file: string; text: string } | undefined> => {
    const file = resolve(dirname(configFile), name);
    try {
      return { file, text: await readFile(file, 'utf8') };
    } catch (error) {
      problems.push(source.problemAt(path, `cannot read ${path.join('.')} '${name}': ${(error as Error).message}`));
      return undefined;
    }
  };
  if (doc.static) {
    const { header, valueFile, prefix = '' } = doc.static;
    const before = problems.length;
    const headerProblem = credentialHeaderProblem(header, context);
    if (headerProblem) problems.push(source.problemAt([...at, 'static', 'header'], headerProblem));
    const read = await readText([...at, 'static', 'valueFile'], valueFile);
    if (read) {
      const checked = staticCredentialValue(read.text, prefix);
      if ('problem' in checked) problems.push(source.problemAt([...at, 'static', 'valueFile'], `the credential in '${valueFile}' ${checked.problem}`));
    }
    return problems.length === before && read ? { mode: 'static', header, valueFile: read.file, prefix } : undefined;
  }
  if (doc.idpToken) return loadIdpToken(source, context, [...at, 'idpToken'], problems);
  if (doc.connectedAccount) return loadConnectedAccount(source, doc.connectedAccount, context, [...at, 'connectedAccount'], readText, problems);
  return loadTokenExchange(source, doc.tokenExchange!, context, [...at, 'tokenExchange'], readText, problems);
}


async function loadTokenExchange(
  source: YamlSource,
  doc: NonNullable<UpstreamAuthDocument['tokenExchange']>,
  context: UpstreamAuthContext,
  at: (string | number)[],
  readText: ReadText,
  problems: ConfigProblem[],
): Promise<UpstreamAuthConfig | undefined> {
  const before = problems.length;
  const problem = (key: string | undefined, message: string) => problems.push(source.problemAt(key === undefined ? at : [...at, key], message));
  const name = `routes.${context.index}.upstreamAuth.tokenExchange`;
  const preset = doc.preset ?? 'rfc8693';
  // A client's token goes only to the IdP that issued it (as with introspection): the issuer
  // whose tokens are exchanged is named, or is the one issuer the route trusts.
  let issuer = doc.issuer;
  if (issuer !== undefined && !context.trustingIssuers.includes(issuer)) {
    problem('issuer', `${name}.issuer '${issuer}' is not an issuer route '${context.routeName}' accepts tokens from`);
  } else if (issuer === undefined && context.trustingIssuers.length !== 1) {
    problem(undefined, `${name} needs issuer: route '${context.routeName}' accepts tokens from several issuers, and a token is only ever sent to the IdP that issued it`);
  }
  issuer ??= context.trustingIssuers[0];
  if (doc.tokenEndpoint !== undefined && (!isUrl(doc.tokenEndpoint) || !isHttpsOrLoopback(new URL(doc.tokenEndpoint)))) {
    problem('tokenEndpoint', `tokenEndpoint '${doc.tokenEndpoint}' must be an https URL (plain http only on loopback)`);
  }
  if ((doc.clientSecretFile === undefined) === (doc.privateKeyFile === undefined)) {
    problem(doc.privateKeyFile !== undefined ? 'privateKeyFile' : undefined, `${name} needs exactly one of clientSecretFile and privateKeyFile`);
  }
  if (doc.authMethod !== undefined && doc.clientSecretFile === undefined) problem('authMethod', 'authMethod applies to clientSecretFile (privateKeyFile authenticates with private_key_jwt)');
  for (const key of ['algorithm', 'keyId'] as const) if (doc[key] !== undefined && doc.privateKeyFile === undefined) problem(key, `${key} applies only with privateKeyFile`);
  if (preset === 'entra-obo') {
    // Entra's on-behalf-of request names what it wants by scope (`api://app/.default`) alone.
    if (!doc.scopes?.length) problem('preset', 'preset entra-obo needs scopes (e.g. api://<upstream app>/.default)');
    for (const key of ['audience', 'resource'] as const) if (doc[key] !== undefined) problem(key, `${key} does not apply to preset entra-obo: name the upstream in scopes`);
  }
  if (doc.cacheKeyFile === undefined && context.storeType === 'redis') {
    problem(undefined, `${name} needs cacheKeyFile with store type 'redis': replicas share exchanged tokens only under one key`);
  }
  const clientAuth = await readClientAuth(source, doc, at, readText, problems);
  const cacheKey = doc.cacheKeyFile === undefined ? undefined : await readCacheKey(source, doc.cacheKeyFile, [...at, 'cacheKeyFile'], readText, problems);
  if (problems.length > before || !clientAuth || issuer === undefined) return undefined;
  return {
    mode: 'tokenExchange',
    preset,
    issuer,
    ...(doc.tokenEndpoint !== undefined ? { tokenEndpoint: doc.tokenEndpoint } : {}),
    clientId: doc.clientId,
    clientAuth: clientAuth.auth,
    ...(doc.audience !== undefined ? { audience: doc.audience } : {}),
    ...(doc.resource !== undefined ? { resource: doc.resource } : {}),
    scopes: doc.scopes ?? [],
    ...(cacheKey ? { cacheKey: cacheKey.key } : {}),
    files: [clientAuth.file, ...(cacheKey ? [cacheKey.file] : [])],
  };
}

async function readClientAuth(
  source: YamlSource,
  doc: NonNullable<UpstreamAuthDocument['tokenExchange']>,
  at: (string | number)[],
  readText: ReadText,
  problems: ConfigProblem[],
): Promise<{ auth: TokenEndpointAuth; file: string } | undefined> {
  if (doc.clientSecretFile !== undefined) {
    const path = [...at, 'clientSecretFile'];
    const read = await readText(path, doc.clientSecretFile);
    if (!read) return undefined;
    const secret = read.text.replace(/\r?\n$/, '');
    if (secret === '') {
      problems.push(source.problemAt(path, `${path.join('.')} '${doc.clientSecretFile}' is empty`));
      return undefined;
    }
    return { auth: { method: doc.authMethod ?? 'client_secret_basic', secret }, file: read.file };
  }
  if (doc.privateKeyFile === undefined) return undefined;
  const path = [...at, 'privateKeyFile'];
  const read = await readText(path, doc.privateKeyFile);
  if (!read) return undefined;
  const algorithm = doc.algorithm ?? 'RS256';
  try {
    // Imported now only to find out whether it can sign: a wrong key type is a config error.
    await importPKCS8(read.text, algorithm);
  } catch (error) {
    problems.push(source.problemAt(path, `${path.join('.')} '${doc.privateKeyFile}' is not a PKCS#8 PEM private key for ${algorithm}: ${(error as Error).message}`));
    return undefined;
  }
  return { auth: { method: 'private_key_jwt', privateKey: read.text, algorithm, ...(doc.keyId !== undefined ? { keyId: doc.keyId } : {}) }, file: read.file };
}

/** The cache key file holds 32 random bytes, base64 or base64url (`openssl rand -base64 32`). */
async function readCacheKey(source: YamlSource, name: string, path: (string | number)[], readText: ReadText, problems: ConfigProblem[]): Promise<{ key: string; file: string } | undefined> {
  const read = await readText(path, name);
  if (!read) return undefined;
  const text = read.text.trim();
  const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(text) ? Buffer.from(text.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''), 'base64url') : Buffer.alloc(0);
  if (bytes.length !== 32) {
    problems.push(source.problemAt(path, `${path.join('.')} '${name}' must hold 32 random bytes in base64 (openssl rand -base64 32)`));
    return undefined;
  }
  return { key: bytes.toString('base64url'), file: read.file };
}
