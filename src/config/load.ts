import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import gatewaySchema from '../../schemas/gateway.schema.json' with { type: 'json' };
import type { JSONWebKeySet } from 'jose';
import { comparableHttpUri, httpScheme } from '../auth/http-uri.js';
import { loadPolicyFile } from '../policy/load.js';
import type { CompiledPolicy } from '../policy/types.js';
import { loadAuthorizationServer, type AuthorizationServerDocument } from './authorization-server-section.js';
import { durationOr, parseDuration } from './duration.js';
import { buildIssuer, loadIntrospectionSecrets, loadIssuerKeys, type IssuerDocument } from './issuer-section.js';
import { ConfigError, type ConfigProblem } from './problems.js';
import { schemaChecker } from './schema-validation.js';
import { loadServer, type ServerDocument } from './server-section.js';
import { loadStore, type StoreDocument } from './store-section.js';
import { DEFAULTS, type AuthorizationServerConfig, type GatewayConfig, type IdentityHeaders, type IdentityTokenConfig, type LogLevel, type RouteConfig, type ServerConfig, type StoreConfig, type UpstreamAuthConfig } from './types.js';
import { isHttpsOrLoopback, isLoopbackHost, isUrl } from './urls.js';
import { tracingFrom, type TracingDocument } from './tracing-section.js';
import { loadUpstreamAuth, type UpstreamAuthDocument } from './upstream-auth-section.js';
import { YamlSource } from './yaml-source.js';

/** The config file as written, after schema validation (before defaults). */
interface ConfigDocument extends ServerDocument {
  publicUrl?: string;
  store?: StoreDocument;
  sessions?: { idleTimeout?: string; maxPerPrincipal?: number };
  allowedOrigins?: string[];
  log?: { level?: LogLevel };
  tracing?: TracingDocument;
  /** Absent only with authorizationServer (see checkSemantics); read as [] then. */
  issuers: IssuerDocument[];
  authorizationServerMetadata?: { mode: 'redirect' | 'serve'; issuer?: string };
  authorizationServer?: AuthorizationServerDocument;
  routes: RouteDocument[];
}

interface RouteDocument {
  name: string;
  path: string;
  upstream: string;
  policy: string;
  forwardHeaders?: string[];
  onStoreError?: 'deny' | 'allow';
  identityHeaders?: IdentityHeaders;
  audit?: { arguments?: boolean; redact?: string[] };
  stepUp?: { answer?: 'challenge' | 'error'; clients?: string[] };
  upstreamAuth?: UpstreamAuthDocument;
}

/**
 * Headers the gateway builds for the upstream itself, or that proxies use to vouch for a client
 * (any x-forwarded-*): never a client's copy, never an identity header.
 */
function isGatewaySetHeader(header: string): boolean {
  return header.startsWith('x-forwarded-') || ['x-request-id', 'forwarded', 'x-real-ip'].includes(header);
}

/** Argument keys never logged, whatever a route's audit.redact says (matched as substrings). */
// `assertion` and `verifier`: client assertions and PKCE verifiers, which the logger's own
// redaction caught one level deep before audit lines stopped going through it.
export const ALWAYS_REDACTED: readonly string[] = ['password', 'secret', 'token', 'key', 'authorization', 'credential', 'cookie', 'assertion', 'verifier'];

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
  const source = new YamlSource(file, text, { misfit: checkConfigSchema.misfit });
  if (source.value === undefined) throw new ConfigError(source.problems);
  const written = source.value as ConfigDocument;
  const schemaProblems = checkConfigSchema(source);
  const problems = [...source.problems, ...schemaProblems];
  // An authorization-server-only gateway trusts no other issuer: `issuers` may then be left out.
  const isMapping = typeof written === 'object' && written !== null && !Array.isArray(written);
  const doc: ConfigDocument = isMapping ? { ...written, issuers: written.issuers ?? [] } : written;
  if (isMapping && written.issuers === undefined && written.authorizationServer === undefined) {
    problems.push(source.problemAt([], "top level: missing required key 'issuers' (or set authorizationServer, to be the authorization server)"));
  }
  // Cross-entry rules assume the shapes the schema guarantees.
  if (schemaProblems.length === 0) problems.push(...checkSemantics(source, doc));
  // Policies are checked even when the config itself has problems: every problem in one pass.
  const policies = await loadPolicies(file, doc, problems);
  const store = schemaProblems.length === 0 ? await loadStore(source, file, doc.store, problems) : undefined;
  const issuerKeys = schemaProblems.length === 0 ? await loadIssuerKeys(source, file, doc.issuers, problems) : [];
  const secrets = schemaProblems.length === 0 ? await loadIntrospectionSecrets(source, file, doc.issuers, problems) : [];
  const server = schemaProblems.length === 0 ? await loadServer(source, file, doc, problems) : undefined;
  const tracing = schemaProblems.length === 0 ? tracingFrom(doc.tracing, process.env, source, problems) : {};
  const upstreamAuth = schemaProblems.length === 0 ? await loadUpstreamAuths(source, file, doc, problems) : [];
  const authorizationServer =
    schemaProblems.length === 0 && doc.authorizationServer
      ? await loadAuthorizationServer(source, file, doc.authorizationServer, { publicUrl: doc.publicUrl, compatMetadata: doc.authorizationServerMetadata !== undefined, issuers: doc.issuers.map((i) => i.issuer) }, problems)
      : undefined;
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...buildConfig(file, doc, policies, store!, issuerKeys, secrets, server!, upstreamAuth, authorizationServer), ...tracing };
}

/** Each route's upstreamAuth (src/config/upstream-auth-section.ts), with the route and issuers it depends on. */
function loadUpstreamAuths(source: YamlSource, file: string, doc: ConfigDocument, problems: ConfigProblem[]): Promise<(UpstreamAuthConfig | undefined)[]> {
  return Promise.all(
    doc.routes.map((route, index) =>
      loadUpstreamAuth(source, file, route.upstreamAuth, {
        index,
        routeName: route.name,
        forwardHeaders: route.forwardHeaders ?? [],
        identityHeaders: Object.values(route.identityHeaders ?? {}),
        trustingIssuers: doc.issuers.filter((issuer) => issuer.routes === undefined || issuer.routes.includes(route.name)).map((issuer) => issuer.issuer),
        storeType: doc.store?.type ?? 'memory',
        facade: doc.authorizationServer ? { keepsTokens: doc.authorizationServer.upstream.tokenEncryptionKeyFile !== undefined } : undefined,
      }, problems),
    ),
  );
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
  const asBase = doc.authorizationServer?.issuer !== undefined && isUrl(doc.authorizationServer.issuer) ? new URL(doc.authorizationServer.issuer).pathname.replace(/\/$/, '') : '';
  doc.routes.forEach((route, index) => {
    if (doc.authorizationServer && (route.path === `${asBase}/oauth` || route.path.startsWith(`${asBase}/oauth/`))) {
      problems.push(source.problemAt(['routes', index, 'path'], `route path '${route.path}' collides with the authorization server's endpoints under ${asBase}/oauth/`));
    }
    if (route.path.startsWith('/.well-known/')) {
      problems.push(source.problemAt(['routes', index, 'path'], `route path '${route.path}' collides with the gateway's well-known endpoints`));
    }
    if (route.path === '/healthz' || route.path === '/readyz') {
      problems.push(source.problemAt(['routes', index, 'path'], `route path '${route.path}' is reserved for the gateway's health endpoints`));
    } else if (route.path.length > 1 && route.path.endsWith('/')) {
      problems.push(source.problemAt(['routes', index, 'path'], `route path '${route.path}' must not end with '/' (paths are matched exactly)`));
    }
    if (!isUrl(route.upstream)) problems.push(source.problemAt(['routes', index, 'upstream'], `upstream '${route.upstream}' is not a valid URL`));
    if (route.stepUp?.clients !== undefined && route.stepUp.answer !== 'error') {
      problems.push(source.problemAt(['routes', index, 'stepUp', 'clients'], 'stepUp.clients applies only with stepUp.answer: error'));
    }
    route.forwardHeaders?.forEach((header, at) => {
      if (isGatewaySetHeader(header)) {
        problems.push(source.problemAt(['routes', index, 'forwardHeaders', at], `'${header}' cannot be forwarded from the client: the gateway sets the forwarding headers itself (see trustedProxies)`));
      }
    });
    const identity = Object.entries(route.identityHeaders ?? {});
    identity.forEach(([kind, header], at) => {
      const path = ['routes', index, 'identityHeaders', kind];
      if (isGatewaySetHeader(header)) problems.push(source.problemAt(path, `identity header '${header}' is a header the gateway sets itself`));
      else if (identity.findIndex(([, other]) => other === header) !== at) problems.push(source.problemAt(path, `identity header '${header}' is used twice`));
      else if (route.forwardHeaders?.includes(header)) problems.push(source.problemAt(path, `identity header '${header}' is also in forwardHeaders: a client could send its own`));
    });
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
    issuer.audiences?.forEach((audience, at) => {
      // An http(s) audience is compared by src/auth/http-uri.ts: one that rule refuses would never match.
      if (httpScheme(audience) !== undefined && comparableHttpUri(audience) === undefined) {
        problems.push(source.problemAt(['issuers', index, 'audiences', at], `audience '${audience}' is not an http(s) URI a token could match: no userinfo, fragment, spaces or characters outside RFC 3986`));
      }
    });
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
    // The authorization server, when on, trusts every route.
    if (!doc.authorizationServer && doc.issuers.length > 0 && trusting.length === 0) {
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
  } else if (doc.publicUrl !== undefined && comparableHttpUri(`${new URL(doc.publicUrl).origin}/`) === undefined) {
    // Route resources (publicUrl + path) are what token audiences are compared with (src/auth/http-uri.ts).
    problems.push(source.problemAt(['publicUrl'], `publicUrl '${doc.publicUrl}' has a host outside RFC 3986: no token audience could match it`));
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
  listeners: { server: ServerConfig; identityToken: IdentityTokenConfig },
  upstreamAuth: readonly (UpstreamAuthConfig | undefined)[],
  authorizationServer: AuthorizationServerConfig | undefined,
): GatewayConfig {
  const routes: RouteConfig[] = doc.routes.map((route, index) => ({
    name: route.name,
    path: route.path,
    upstream: new URL(route.upstream),
    policy: policies[index]!,
    forwardHeaders: route.forwardHeaders ?? [],
    onStoreError: route.onStoreError ?? DEFAULTS.onStoreError,
    identityHeaders: route.identityHeaders ?? {},
    audit: {
      arguments: route.audit?.arguments ?? false,
      redact: [...ALWAYS_REDACTED, ...(route.audit?.redact ?? []).map((key) => key.toLowerCase())],
    },
    stepUp: { answer: route.stepUp?.answer ?? 'challenge', ...(route.stepUp?.clients ? { clients: route.stepUp.clients } : {}) },
    ...(upstreamAuth[index] ? { upstreamAuth: upstreamAuth[index] } : {}),
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
    server: listeners.server,
    identityToken: listeners.identityToken,
    issuers: doc.issuers.map((issuer, index) => buildIssuer(issuer, issuerKeys[index], secrets[index])),
    ...(doc.authorizationServerMetadata
      ? { authorizationServerMetadata: { mode: doc.authorizationServerMetadata.mode, issuer: doc.authorizationServerMetadata.issuer ?? doc.issuers[0]!.issuer } }
      : {}),
    ...(authorizationServer ? { authorizationServer } : {}),
    routes,
  };
}

