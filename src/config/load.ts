import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import gatewaySchema from '../../schemas/gateway.schema.json' with { type: 'json' };
import type { JSONWebKeySet } from 'jose';
import { normalizeTyp, type ClaimMapping } from '../auth/claims.js';
import { unusableReason } from '../auth/key-set.js';
import { PRESETS, type PresetName, type RequiredClaimValue } from '../auth/presets.js';
import { loadPolicyFile } from '../policy/load.js';
import type { CompiledPolicy } from '../policy/types.js';
import { parseDuration } from './duration.js';
import { ConfigError, type ConfigProblem } from './problems.js';
import { schemaChecker } from './schema-validation.js';
import { ASYMMETRIC_ALGORITHMS, DEFAULTS, type AsymmetricAlgorithm, type GatewayConfig, type IssuerConfig, type LogLevel, type RouteConfig, type StoreConfig } from './types.js';
import { isHttpsOrLoopback, isLoopbackHost, isUrl } from './urls.js';
import { YamlSource } from './yaml-source.js';

/** The config file as written, after schema validation (before defaults). */
interface ConfigDocument {
  listen?: { host?: string; port?: number };
  publicUrl?: string;
  store?: StoreDocument;
  sessions?: { idleTimeout?: string; maxPerPrincipal?: number };
  allowedOrigins?: string[];
  limits?: { maxBodyBytes?: number };
  timeouts?: { upstreamResponse?: string; issuerDiscovery?: string };
  log?: { level?: LogLevel };
  issuers: IssuerDocument[];
  authorizationServerMetadata?: { mode: 'redirect' | 'serve'; issuer?: string };
  routes: { name: string; path: string; upstream: string; policy: string; forwardHeaders?: string[]; onStoreError?: 'deny' | 'allow' }[];
}

interface IssuerDocument {
  issuer: string;
  preset?: PresetName;
  jwksUri?: string;
  jwks?: JSONWebKeySet;
  jwksFile?: string;
  audiences?: string[];
  algorithms?: AsymmetricAlgorithm[];
  clockTolerance?: string;
  typ?: string[];
  routes?: string[];
  claims?: Partial<ClaimMapping>;
  requireClaims?: Record<string, RequiredClaimValue>;
  dpop?: 'allowed' | 'required' | 'off';
  introspection?: {
    endpoint?: string;
    clientId: string;
    clientSecret?: string;
    clientSecretFile?: string;
    authMethod?: 'client_secret_basic' | 'client_secret_post';
    cacheTtl?: string;
    negativeCacheTtl?: string;
  };
}

interface StoreDocument {
  type: 'memory' | 'redis';
  url?: string;
  nodes?: string[];
  keyPrefix?: string;
  username?: string;
  password?: string;
  passwordFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string; servername?: string };
  commandTimeout?: string;
  connectTimeout?: string;
}

const checkConfigSchema = schemaChecker(gatewaySchema);

/**
 * Reads and validates the config and every policy it names. Throws ConfigError listing every
 * problem found across all files, each as file:line:col.
 */
export async function loadConfig(file: string): Promise<GatewayConfig> {
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError([{ file, line: 1, col: 1, message: `cannot read config file: ${(error as Error).message}` }]);
  }
  return parseConfig(path, text);
}

export async function parseConfig(file: string, text: string): Promise<GatewayConfig> {
  const source = new YamlSource(file, text);
  if (source.value === undefined) throw new ConfigError(source.problems);
  const doc = source.value as ConfigDocument;
  const schemaProblems = checkConfigSchema(source);
  const problems = [...source.problems, ...schemaProblems];
  // Cross-entry rules assume the shapes the schema guarantees.
  if (schemaProblems.length === 0) problems.push(...checkSemantics(source, doc));
  // Policies are checked even when the config itself has problems: every problem in one pass.
  const policies = await loadPolicies(file, doc, problems);
  const store = schemaProblems.length === 0 ? await loadStore(source, file, doc.store, problems) : undefined;
  const issuerKeys = schemaProblems.length === 0 ? await loadIssuerKeys(source, file, doc.issuers, problems) : [];
  const secrets = schemaProblems.length === 0 ? await loadIntrospectionSecrets(source, file, doc.issuers, problems) : [];
  if (problems.length > 0) throw new ConfigError(problems);
  return buildConfig(file, doc, policies, store!, issuerKeys, secrets);
}

/** Rules a schema cannot express: uniqueness across entries and URL shapes. */
function checkSemantics(source: YamlSource, doc: ConfigDocument): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const reportDuplicates = (values: string[], key: string, what: string) => {
    const seen = new Map<string, number>();
    values.forEach((value, index) => {
      const earlier = seen.get(value);
      if (earlier !== undefined) {
        problems.push(source.problemAt(['routes', index, key], `${what} '${value}' is already used by routes.${earlier}`));
      } else seen.set(value, index);
    });
  };
  reportDuplicates(doc.routes.map((r) => r.name), 'name', 'route name');
  reportDuplicates(doc.routes.map((r) => r.path), 'path', 'route path');
  doc.routes.forEach((route, index) => {
    if (route.path.startsWith('/.well-known/')) {
      problems.push(source.problemAt(['routes', index, 'path'], `route path '${route.path}' collides with the gateway's well-known endpoints`));
    }
    if (route.path === '/healthz' || route.path === '/readyz') {
      problems.push(source.problemAt(['routes', index, 'path'], `route path '${route.path}' is reserved for the gateway's health endpoints`));
    } else if (route.path.length > 1 && route.path.endsWith('/')) {
      problems.push(source.problemAt(['routes', index, 'path'], `route path '${route.path}' must not end with '/' (paths are matched exactly)`));
    }
    if (!isUrl(route.upstream)) problems.push(source.problemAt(['routes', index, 'upstream'], `upstream '${route.upstream}' is not a valid URL`));
  });
  doc.issuers.forEach((issuer, index) => {
    const url = isUrl(issuer.issuer) ? new URL(issuer.issuer) : undefined;
    // RFC 8414 §2: the issuer identifier is an https URL with no query or fragment.
    if (!url || url.search || url.hash) {
      problems.push(source.problemAt(['issuers', index, 'issuer'], `issuer '${issuer.issuer}' must be a URL without query or fragment`));
    } else if (!isHttpsOrLoopback(url)) {
      problems.push(source.problemAt(['issuers', index, 'issuer'], `issuer '${issuer.issuer}' must use https (plain http only on loopback)`));
    }
  });
  const routeNames = new Set(doc.routes.map((route) => route.name));
  doc.issuers.forEach((issuer, index) => {
    const keySources = (['jwksUri', 'jwks', 'jwksFile'] as const).filter((key) => issuer[key] !== undefined);
    if (keySources.length > 1) {
      problems.push(source.problemAt(['issuers', index, keySources[1]!], `give issuers.${index} one key source: ${keySources.join(', ')} are exclusive`));
    }
    if (issuer.jwksUri !== undefined && (!isUrl(issuer.jwksUri) || !isHttpsOrLoopback(new URL(issuer.jwksUri)))) {
      problems.push(source.problemAt(['issuers', index, 'jwksUri'], `jwksUri '${issuer.jwksUri}' must be an https URL (plain http only on loopback)`));
    }
    if (issuer.preset === 'google' && Object.keys(issuer.requireClaims ?? {}).length === 0) {
      problems.push(source.problemAt(['issuers', index, 'preset'], 'preset google admits any Google account: restrict it with requireClaims (e.g. hd, email or azp)'));
    }
    const endpoint = issuer.introspection?.endpoint;
    if (endpoint !== undefined && (!isUrl(endpoint) || !isHttpsOrLoopback(new URL(endpoint)))) {
      problems.push(source.problemAt(['issuers', index, 'introspection', 'endpoint'], `introspection endpoint '${endpoint}' must be an https URL (plain http only on loopback)`));
    }
    issuer.routes?.forEach((name, at) => {
      if (!routeNames.has(name)) problems.push(source.problemAt(['issuers', index, 'routes', at], `issuers.${index}.routes names no route '${name}'`));
    });
  });
  doc.routes.forEach((route, index) => {
    const trusting = doc.issuers.filter((issuer) => issuer.routes === undefined || issuer.routes.includes(route.name));
    if (trusting.filter((issuer) => issuer.introspection).length > 1) {
      problems.push(source.problemAt(['routes', index, 'name'], `route '${route.name}' trusts several issuers with introspection: an opaque token would not say which to ask (set issuers[].routes)`));
    }
    if (!doc.issuers.some((issuer) => issuer.routes === undefined || issuer.routes.includes(route.name))) {
      problems.push(source.problemAt(['routes', index, 'name'], `route '${route.name}' is trusted by no issuer (every issuer lists routes without it)`));
    }
  });
  const compat = doc.authorizationServerMetadata;
  if (compat) {
    if (compat.issuer === undefined && doc.issuers.length > 1) {
      problems.push(source.problemAt(['authorizationServerMetadata'], 'authorizationServerMetadata.issuer is needed when several issuers are configured'));
    } else if (compat.issuer !== undefined && !doc.issuers.some((issuer) => issuer.issuer === compat.issuer)) {
      problems.push(source.problemAt(['authorizationServerMetadata', 'issuer'], `authorizationServerMetadata.issuer '${compat.issuer}' is not a configured issuer`));
    }
  }
  const issuerNames = doc.issuers.map((i) => i.issuer.replace(/\/$/, ''));
  issuerNames.forEach((name, index) => {
    if (issuerNames.indexOf(name) !== index) problems.push(source.problemAt(['issuers', index, 'issuer'], `issuer '${name}' is listed twice`));
  });
  const mustBePositive: [(string | number)[], string | undefined][] = [
    [['timeouts', 'upstreamResponse'], doc.timeouts?.upstreamResponse],
    [['timeouts', 'issuerDiscovery'], doc.timeouts?.issuerDiscovery],
    [['sessions', 'idleTimeout'], doc.sessions?.idleTimeout],
    [['store', 'commandTimeout'], doc.store?.commandTimeout],
    [['store', 'connectTimeout'], doc.store?.connectTimeout],
    ...doc.issuers.flatMap((issuer, index): [(string | number)[], string | undefined][] => [
      [['issuers', index, 'introspection', 'cacheTtl'], issuer.introspection?.cacheTtl],
    ]),
  ];
  for (const [path, value] of mustBePositive) {
    if (value !== undefined && parseDuration(value) === 0) problems.push(source.problemAt(path, `${path.join('.')} must be longer than 0`));
  }
  if (doc.publicUrl !== undefined && !isUrl(doc.publicUrl)) {
    problems.push(source.problemAt(['publicUrl'], `publicUrl '${doc.publicUrl}' is not a valid URL`));
  } else if (doc.publicUrl !== undefined && !isHttpsOrLoopback(new URL(doc.publicUrl))) {
    // RFC 9728 §1.2 / RFC 8707: a protected resource is identified by an https URL.
    problems.push(source.problemAt(['publicUrl'], `publicUrl '${doc.publicUrl}' must use https (plain http only on loopback)`));
  } else if (doc.publicUrl === undefined && !isLoopbackHost(doc.listen?.host ?? DEFAULTS.host)) {
    problems.push(source.problemAt(['listen'], 'publicUrl is required when listening beyond loopback: clients must know the https origin they reach the gateway at'));
  }
  return problems;
}

async function loadPolicies(configFile: string, doc: ConfigDocument, problems: ConfigProblem[]): Promise<CompiledPolicy[]> {
  const files = (Array.isArray(doc.routes) ? doc.routes : [])
    .map((route: unknown) => (route as { policy?: unknown } | null)?.policy)
    .filter((policy): policy is string => typeof policy === 'string');
  const results = await Promise.all(files.map((policy) => loadPolicyFile(resolve(dirname(configFile), policy))));
  const policies: CompiledPolicy[] = [];
  for (const result of results) {
    if (result.ok) policies.push(result.policy);
    else problems.push(...result.problems);
  }
  return policies;
}

function buildConfig(
  file: string,
  doc: ConfigDocument,
  policies: CompiledPolicy[],
  store: StoreConfig,
  issuerKeys: (JSONWebKeySet | undefined)[],
  secrets: (string | undefined)[],
): GatewayConfig {
  const routes: RouteConfig[] = doc.routes.map((route, index) => ({
    name: route.name,
    path: route.path,
    upstream: new URL(route.upstream),
    policy: policies[index]!,
    forwardHeaders: route.forwardHeaders ?? [],
    onStoreError: route.onStoreError ?? DEFAULTS.onStoreError,
  }));
  return {
    file,
    listen: { host: doc.listen?.host ?? DEFAULTS.host, port: doc.listen?.port ?? DEFAULTS.port },
    publicUrl: doc.publicUrl === undefined ? undefined : new URL(doc.publicUrl).origin,
    store,
    sessions: {
      idleTimeoutMs: durationOr(doc.sessions?.idleTimeout, DEFAULTS.sessionIdleTimeoutMs),
      maxPerPrincipal: doc.sessions?.maxPerPrincipal ?? DEFAULTS.maxSessionsPerPrincipal,
    },
    allowedOrigins: (doc.allowedOrigins ?? []).map((origin) => new URL(origin).origin),
    maxBodyBytes: doc.limits?.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
    upstreamResponseTimeoutMs: durationOr(doc.timeouts?.upstreamResponse, DEFAULTS.upstreamResponseTimeoutMs),
    issuerDiscoveryTimeoutMs: durationOr(doc.timeouts?.issuerDiscovery, DEFAULTS.issuerDiscoveryTimeoutMs),
    logLevel: doc.log?.level ?? DEFAULTS.logLevel,
    issuers: doc.issuers.map((issuer, index) => buildIssuer(issuer, issuerKeys[index], secrets[index])),
    ...(doc.authorizationServerMetadata
      ? { authorizationServerMetadata: { mode: doc.authorizationServerMetadata.mode, issuer: doc.authorizationServerMetadata.issuer ?? doc.issuers[0]!.issuer } }
      : {}),
    routes,
  };
}

function buildIssuer(doc: IssuerDocument, jwks: JSONWebKeySet | undefined, secret: string | undefined): IssuerConfig {
  const preset = PRESETS[doc.preset ?? 'generic'];
  const claims = doc.claims ?? {};
  return {
    issuer: doc.issuer,
    preset: doc.preset ?? 'generic',
    algorithms: doc.algorithms ?? ASYMMETRIC_ALGORITHMS,
    clockToleranceSeconds: durationOr(doc.clockTolerance, DEFAULTS.clockToleranceSeconds * 1000) / 1000,
    typ: (doc.typ ?? preset.typ).map(normalizeTyp),
    dpop: doc.dpop ?? 'allowed',
    requireClaims: { ...preset.requireClaims, ...doc.requireClaims },
    claims: {
      scopes: claims.scopes ?? preset.claims.scopes,
      subject: claims.subject ?? preset.claims.subject,
      client: claims.client ?? preset.claims.client,
      ...((claims.scopePrefix ?? preset.claims.scopePrefix) !== undefined ? { scopePrefix: claims.scopePrefix ?? preset.claims.scopePrefix } : {}),
    },
    ...(doc.audiences ? { audiences: doc.audiences } : {}),
    ...(doc.routes ? { routes: doc.routes } : {}),
    ...(doc.jwksUri ? { jwksUri: doc.jwksUri } : {}),
    ...(jwks ? { jwks } : {}),
    ...(doc.introspection && secret !== undefined
      ? {
          introspection: {
            ...(doc.introspection.endpoint ? { endpoint: doc.introspection.endpoint } : {}),
            clientId: doc.introspection.clientId,
            clientSecret: secret,
            authMethod: doc.introspection.authMethod ?? 'client_secret_basic',
            cacheTtlMs: durationOr(doc.introspection.cacheTtl, DEFAULTS.introspectionCacheTtlMs),
            negativeCacheTtlMs: durationOr(doc.introspection.negativeCacheTtl, DEFAULTS.introspectionNegativeCacheTtlMs),
          },
        }
      : {}),
  };
}

/** Each introspecting issuer's client secret, inline or read from its file now. */
async function loadIntrospectionSecrets(source: YamlSource, configFile: string, issuers: IssuerDocument[], problems: ConfigProblem[]): Promise<(string | undefined)[]> {
  return Promise.all(
    issuers.map(async (issuer, index) => {
      const introspection = issuer.introspection;
      if (!introspection) return undefined;
      const at = ['issuers', index, 'introspection'];
      if ((introspection.clientSecret === undefined) === (introspection.clientSecretFile === undefined)) {
        problems.push(source.problemAt(at, `issuers.${index}.introspection needs exactly one of clientSecret and clientSecretFile`));
        return undefined;
      }
      if (introspection.clientSecret !== undefined) return introspection.clientSecret;
      try {
        return (await readFile(resolve(dirname(configFile), introspection.clientSecretFile!), 'utf8')).replace(/\r?\n$/, '');
      } catch (error) {
        problems.push(source.problemAt([...at, 'clientSecretFile'], `cannot read issuers.${index}.introspection.clientSecretFile: ${(error as Error).message}`));
        return undefined;
      }
    }),
  );
}

/** Inline keys, or keys read from jwksFile now, so a missing or broken file is an error at its line. */
async function loadIssuerKeys(source: YamlSource, configFile: string, issuers: IssuerDocument[], problems: ConfigProblem[]): Promise<(JSONWebKeySet | undefined)[]> {
  return Promise.all(
    issuers.map(async (issuer, index) => {
      if (issuer.jwks) return usableOrProblem(issuer.jwks, ['issuers', index, 'jwks']);
      if (issuer.jwksFile === undefined) return undefined;
      const at = ['issuers', index, 'jwksFile'];
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(resolve(dirname(configFile), issuer.jwksFile), 'utf8'));
      } catch (error) {
        problems.push(source.problemAt(at, `cannot read issuers.${index}.jwksFile '${issuer.jwksFile}': ${(error as Error).message}`));
        return undefined;
      }
      const keys = (parsed as { keys?: unknown } | null)?.keys;
      if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'object' && k !== null && typeof (k as { kty?: unknown }).kty === 'string')) {
        problems.push(source.problemAt(at, `issuers.${index}.jwksFile '${issuer.jwksFile}' is not a JWKS ({"keys": [...]} with a kty in every key)`));
        return undefined;
      }
      return usableOrProblem(parsed as JSONWebKeySet, at);
    }),
  );

  /** Keys given in the config must include one that can verify, or every token would get 503. */
  function usableOrProblem(jwks: JSONWebKeySet, at: (string | number)[]): JSONWebKeySet | undefined {
    const reasons = jwks.keys.map(unusableReason);
    const alarming = reasons.findIndex((reason) => reason?.alarming);
    if (alarming !== -1) {
      // Private or symmetric key material in a config is a leak to fix, not a key to skip.
      problems.push(source.problemAt(at, `${at.join('.')}: key ${alarming} ${reasons[alarming]!.reason}; give only public signature keys`));
      return undefined;
    }
    if (reasons.some((reason) => reason === undefined)) return jwks;
    const why = reasons.map((reason, i) => `key ${i} ${reason!.reason}`).join('; ');
    problems.push(source.problemAt(at, `${at.join('.')} holds no key that can verify tokens (${why})`));
    return undefined;
  }
}

const REDIS_ONLY_KEYS = ['url', 'nodes', 'keyPrefix', 'username', 'password', 'passwordFile', 'tls', 'commandTimeout', 'connectTimeout'] as const;

/**
 * The store section, checked for what the schema cannot say (url xor nodes, one password
 * source) and with its secret files read now, so a missing file is a config error at its line
 * rather than a failure at the first request.
 */
async function loadStore(source: YamlSource, configFile: string, doc: StoreDocument | undefined, problems: ConfigProblem[]): Promise<StoreConfig | undefined> {
  if (doc === undefined || doc.type === 'memory') {
    for (const key of REDIS_ONLY_KEYS) {
      if (doc?.[key] !== undefined) problems.push(source.problemAt(['store', key], `store.${key} applies only to store type 'redis'`));
    }
    return { type: 'memory' };
  }
  const before = problems.length;
  const problem = (path: (string | number)[], message: string) => problems.push(source.problemAt(['store', ...path], message));
  if ((doc.url === undefined) === (doc.nodes === undefined)) problem(['type'], "store type 'redis' needs exactly one of url (one server) and nodes (a Cluster)");
  if (doc.url !== undefined && !isUrl(doc.url)) problem(['url'], `store.url '${doc.url}' is not a valid URL`);
  doc.nodes?.forEach((node, index) => {
    const { port } = parseHostPort(node);
    if (port < 1 || port > 65535) problem(['nodes', index], `store.nodes.${index} '${node}' needs a port from 1 to 65535`);
  });
  const urlHasPassword = doc.url !== undefined && isUrl(doc.url) && new URL(doc.url).password !== '';
  if ([doc.password !== undefined, doc.passwordFile !== undefined, urlHasPassword].filter(Boolean).length > 1) {
    problem([doc.passwordFile !== undefined ? 'passwordFile' : 'password'], 'give the Redis password once: in the url, password or passwordFile');
  }
  if (doc.username !== undefined && doc.url !== undefined && isUrl(doc.url) && new URL(doc.url).username !== '') {
    problem(['username'], 'give the Redis username once: in the url or username');
  }
  if (doc.tls !== undefined && doc.url !== undefined && !doc.url.startsWith('rediss://')) {
    problem(['tls'], 'store.tls needs a rediss:// url (redis:// is plain text)');
  }
  if ((doc.tls?.certFile === undefined) !== (doc.tls?.keyFile === undefined)) {
    problem(['tls', doc.tls?.certFile === undefined ? 'keyFile' : 'certFile'], 'store.tls.certFile and store.tls.keyFile go together');
  }
  const read = async (path: (string | number)[], name: string): Promise<string | undefined> => {
    try {
      return await readFile(resolve(dirname(configFile), name), 'utf8');
    } catch (error) {
      problem(path, `cannot read ${path.join('.')} '${name}': ${(error as Error).message}`);
      return undefined;
    }
  };
  const passwordText = doc.passwordFile === undefined ? undefined : await read(['passwordFile'], doc.passwordFile);
  const [ca, cert, key] = await Promise.all(
    (['caFile', 'certFile', 'keyFile'] as const).map((k) => (doc.tls?.[k] === undefined ? undefined : read(['tls', k], doc.tls[k]!))),
  );
  if (problems.length > before) return undefined;
  return {
    type: 'redis',
    url: doc.url,
    nodes: doc.nodes?.map(parseHostPort),
    keyPrefix: doc.keyPrefix ?? DEFAULTS.redisKeyPrefix,
    username: doc.username,
    password: doc.password ?? passwordText?.replace(/\r?\n$/, ''),
    tls: doc.tls === undefined ? undefined : { ca, cert, key, servername: doc.tls.servername },
    commandTimeoutMs: durationOr(doc.commandTimeout, DEFAULTS.redisCommandTimeoutMs),
    connectTimeoutMs: durationOr(doc.connectTimeout, DEFAULTS.redisConnectTimeoutMs),
  };
}

function parseHostPort(text: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  return { host: text.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(text.slice(colon + 1)) };
}

function durationOr(text: string | undefined, fallbackMs: number): number {
  return text === undefined ? fallbackMs : parseDuration(text);
}
