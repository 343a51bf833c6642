/**
 * A GitHub stand-in: plain OAuth 2.0 without OpenID Connect, with GitHub's endpoint shapes and
 * quirks, for the authorization-server facade's tests (issue 25) and `npm run demo`. One
 * node:http server plays both github.com (the OAuth web flow) and api.github.com (the REST API):
 *
 * - `GET /login/oauth/authorize`: client_id, redirect_uri, state, scope, PKCE (S256 only); no
 *   page, the chosen user approves at once (`loginAs`), or the request is denied
 *   (`failAuthorizations`). An unknown client gets a 404 page; a redirect_uri that is not the
 *   callback URL or below it goes to the callback URL as `error=redirect_uri_mismatch`.
 * - `POST /login/oauth/access_token`: form or JSON body, client credentials in the body (or HTTP
 *   Basic); answers JSON only for `Accept: application/json`, else form-encoded, and errors with
 *   HTTP 200 and an `error` member, as GitHub does. Granted scopes come back comma-separated.
 * - optional expiring user tokens with single-use refresh tokens, as GitHub Apps have
 *   (`expires_in`, `refresh_token`, `refresh_token_expires_in`; grant_type=refresh_token).
 * - `GET /user` (Bearer or `token` scheme) → `{ id: <number>, login, name, email, … }` with
 *   `X-OAuth-Scopes`; `GET /user/orgs` → `[{ login, id, … }]`, private memberships only with
 *   read:org (or user, admin:org). The API refuses requests without a User-Agent (403) and bad
 *   credentials with GitHub's 401 body.
 *
 * Docs followed: docs.github.com "Authorizing OAuth apps", "Troubleshooting OAuth app access
 * token request errors", "Refreshing user access tokens", REST "Users" and "Organizations".
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GitHubUser {
  /** GitHub's numeric user id. */
  readonly id: number;
  readonly login: string;
  /** Null when the user set none. Default: null. */
  readonly name?: string | null;
  /** Null when the user keeps it private. Default: null. */
  readonly email?: string | null;
  /** Organisations the user belongs to publicly: every token sees them in /user/orgs. */
  readonly publicOrgs?: readonly string[];
  /** Private memberships: listed only for tokens with read:org, user or admin:org. */
  readonly orgs?: readonly string[];
}

export interface GitHubStandInOptions {
  /** Default '127.0.0.1'. */
  readonly host?: string;
  /** Default 0 (ephemeral). */
  readonly port?: number;
  /** The OAuth app. */
  readonly clientId: string;
  readonly clientSecret: string;
  /** The app's "Authorization callback URL"; may be set later with setCallbackUrl. */
  readonly callbackUrl?: string;
  /** The accounts, by login. */
  readonly users: readonly GitHubUser[];
  /** Who approves when loginAs names nobody. Default: the first user. */
  readonly defaultLogin?: string;
  /**
   * GitHub App style expiring user tokens with refresh tokens; without it, tokens never expire
   * and no refresh token is issued (a classic OAuth app).
   */
  readonly expiringTokens?: { readonly accessTokenTtlSeconds?: number; readonly refreshTokenTtlSeconds?: number };
}

export interface GitHubStandIn {
  /** Origin of the server, e.g. http://127.0.0.1:PORT: github.com and api.github.com alike. */
  readonly url: string;
  readonly authorizeUrl: string;
  readonly tokenUrl: string;
  /** Base of the REST API (GitHub: https://api.github.com): `${apiUrl}/user`, `${apiUrl}/user/orgs`. */
  readonly apiUrl: string;
  /** Every request received: method, path, and for the token endpoint the parsed parameters. */
  readonly requests: { method: string; path: string; params?: Record<string, string> }[];
  /** Who approves the following authorizations (a login); undefined: defaultLogin. */
  loginAs(login: string | undefined): void;
  /** The following authorizations are answered with this error (e.g. access_denied); undefined stops that. */
  failAuthorizations(error: { error: string; error_description?: string } | undefined): void;
  setCallbackUrl(url: string): void;
  /** Expire every access token issued so far (as if their 8 hours had passed). */
  expireAccessTokens(): void;
  /** Down: the listener closes and every connection is cut (ECONNREFUSED). */
  down(): Promise<void>;
  /** Back on the same port with all its state. */
  up(): Promise<void>;
  close(): Promise<void>;
}

const CODE_TTL_MS = 10 * 60_000;
const DOCS = 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors';
const ORG_SCOPES = ['read:org', 'write:org', 'admin:org', 'user'];

/** GitHub's token-endpoint errors (all answered with HTTP 200). */
const TOKEN_ERRORS = {
  incorrect_client_credentials: 'The client_id and/or client_secret passed are incorrect.',
  redirect_uri_mismatch: 'The redirect_uri MUST match the registered callback URL for this application.',
  bad_verification_code: 'The code passed is incorrect or expired.',
  bad_refresh_token: 'The refresh token passed is incorrect or expired.',
  unsupported_grant_type: 'The grant type is not supported.',
} as const;
type TokenError = keyof typeof TOKEN_ERRORS;

interface PendingCode {
  readonly login: string;
  readonly scope: string;
  /** Where the code went: redirect_uri, or the callback URL when none was given. */
  readonly redirectUri: string;
  readonly codeChallenge: string | undefined;
  readonly expiresAt: number;
}

interface IssuedToken {
  readonly login: string;
  readonly scope: string;
  expiresAt: number | undefined;
}

export async function startGitHubStandIn(options: GitHubStandInOptions): Promise<GitHubStandIn> {
  const host = options.host ?? '127.0.0.1';
  const users = new Map(options.users.map((u) => [u.login, u]));
  const defaultLogin = options.defaultLogin ?? options.users[0]?.login;
  if (defaultLogin === undefined || !users.has(defaultLogin)) throw new Error('startGitHubStandIn: defaultLogin names no user');
  const expiring = options.expiringTokens
    ? { accessMs: (options.expiringTokens.accessTokenTtlSeconds ?? 28_800) * 1000, refreshMs: (options.expiringTokens.refreshTokenTtlSeconds ?? 15_897_600) * 1000 }
    : undefined;

  const state = {
    callbackUrl: options.callbackUrl,
    login: undefined as string | undefined,
    failure: undefined as { error: string; error_description?: string } | undefined,
  };
  const codes = new Map<string, PendingCode>();
  const tokens = new Map<string, IssuedToken>();
  const refreshTokens = new Map<string, { login: string; scope: string; expiresAt: number }>();
  const requests: GitHubStandIn['requests'] = [];

  const issue = (login: string, scope: string): Record<string, string | number> => {
    // Token prefixes as GitHub's: gho_ OAuth app, ghu_ GitHub App user token, ghr_ refresh token.
    const accessToken = `${expiring ? 'ghu' : 'gho'}_${randomBytes(27).toString('base64url')}`;
    tokens.set(accessToken, { login, scope, expiresAt: expiring ? Date.now() + expiring.accessMs : undefined });
    if (!expiring) return { access_token: accessToken, token_type: 'bearer', scope };
    const refreshToken = `ghr_${randomBytes(54).toString('base64url')}`;
    refreshTokens.set(refreshToken, { login, scope, expiresAt: Date.now() + expiring.refreshMs });
    return {
      access_token: accessToken,
      expires_in: expiring.accessMs / 1000,
      refresh_token: refreshToken,
      refresh_token_expires_in: expiring.refreshMs / 1000,
      token_type: 'bearer',
      scope,
    };
  };

  const authorize = (url: URL, res: ServerResponse): void => {
    const q = url.searchParams;
    if (q.get('client_id') !== options.clientId || state.callbackUrl === undefined) {
      return sendHtml(res, 404, 'Not Found');
    }
    const callback = state.callbackUrl;
    const redirectUri = q.get('redirect_uri') ?? undefined;
    const target = redirectUri ?? callback;
    const back = (params: Record<string, string>, to = target): void => {
      const location = new URL(to);
      for (const [k, v] of Object.entries(params)) location.searchParams.set(k, v);
      const st = q.get('state');
      if (st !== null) location.searchParams.set('state', st);
      res.writeHead(302, { location: location.href }).end();
    };
    if (redirectUri !== undefined && !redirectAllowed(redirectUri, callback)) {
      return back({ error: 'redirect_uri_mismatch', error_description: TOKEN_ERRORS.redirect_uri_mismatch, error_uri: DOCS }, callback);
    }
    const method = q.get('code_challenge_method');
    const challenge = q.get('code_challenge') ?? undefined;
    if (challenge !== undefined && method !== null && method !== 'S256') {
      return back({ error: 'invalid_request', error_description: 'code_challenge_method must be S256' });
    }
    if (state.failure) {
      return back({ ...state.failure, error_uri: DOCS });
    }
    const code = randomBytes(10).toString('hex'); // GitHub's codes are 20 hex characters
    codes.set(code, {
      login: state.login ?? defaultLogin,
      // Requested scopes are space-separated; GitHub reports granted ones comma-separated.
      scope: (q.get('scope') ?? '').split(/[ ,]+/).filter(Boolean).join(','),
      redirectUri: target,
      codeChallenge: challenge,
      expiresAt: Date.now() + CODE_TTL_MS,
    });
    back({ code });
  };

  const token = async (req: IncomingMessage, res: ServerResponse, record: GitHubStandIn['requests'][number]): Promise<void> => {
    const params = await readParams(req);
    record.params = params;
    const basic = basicCredentials(req.headers.authorization);
    const clientId = params.client_id ?? basic?.id;
    const clientSecret = params.client_secret ?? basic?.secret;
    const answer = (body: Record<string, string | number>): void => sendToken(req, res, body);
    const fail = (error: TokenError): void => answer({ error, error_description: TOKEN_ERRORS[error], error_uri: DOCS });

    if (clientId !== options.clientId || clientSecret === undefined || !secretMatches(clientSecret, options.clientSecret)) {
      return fail('incorrect_client_credentials');
    }
    if (params.grant_type === 'refresh_token') {
      const entry = params.refresh_token !== undefined ? refreshTokens.get(params.refresh_token) : undefined;
      if (!expiring || !entry || entry.expiresAt <= Date.now()) return fail('bad_refresh_token');
      refreshTokens.delete(params.refresh_token!); // single use: each refresh returns a new one
      return answer(issue(entry.login, entry.scope));
    }
    if (params.grant_type !== undefined && params.grant_type !== 'authorization_code') return fail('unsupported_grant_type');

    const pending = params.code !== undefined ? codes.get(params.code) : undefined;
    if (!pending || pending.expiresAt <= Date.now()) return fail('bad_verification_code');
    if (params.redirect_uri !== undefined && params.redirect_uri !== pending.redirectUri) {
      return fail('redirect_uri_mismatch');
    }
    // A code meets one exchange attempt with the right client, whatever its outcome (RFC 9700 §4.5).
    codes.delete(params.code!);
    if (pending.codeChallenge !== undefined) {
      const verifier = params.code_verifier;
      if (verifier === undefined || createHash('sha256').update(verifier).digest('base64url') !== pending.codeChallenge) {
        return answer({ error: 'bad_verification_code', error_description: 'The code_verifier does not match the code_challenge.', error_uri: DOCS });
      }
    }
    answer(issue(pending.login, pending.scope));
  };

  const api = (path: string, req: IncomingMessage, res: ServerResponse): void => {
    if (!req.headers['user-agent']) {
      return sendHtml(res, 403, 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header');
    }
    const match = /^(?:bearer|token)\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!match) return sendApiError(res, 401, 'Requires authentication');
    const issued = tokens.get(match[1]!);
    if (!issued || (issued.expiresAt !== undefined && issued.expiresAt <= Date.now())) return sendApiError(res, 401, 'Bad credentials');
    const user = users.get(issued.login)!;
    const headers = { 'x-oauth-scopes': issued.scope.split(',').filter(Boolean).join(', ') };
    if (path === '/user') return sendJson(res, 200, userDocument(user), headers);
    const seesPrivate = issued.scope.split(',').some((s) => ORG_SCOPES.includes(s));
    const orgs = [...(user.publicOrgs ?? []), ...(seesPrivate ? (user.orgs ?? []) : [])];
    sendJson(res, 200, orgs.map(orgDocument), headers);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://github.invalid');
    const record: GitHubStandIn['requests'][number] = { method: req.method ?? '', path: url.pathname };
    requests.push(record);
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /login/oauth/authorize') return authorize(url, res);
    if (route === 'POST /login/oauth/access_token') {
      token(req, res, record).catch(() => sendHtml(res, 400, 'Bad Request'));
      return;
    }
    if (route === 'GET /user' || route === 'GET /user/orgs') return api(url.pathname, req, res);
    sendApiError(res, 404, 'Not Found');
  });
  const address = await listen(server, options.port ?? 0, host);
  const url = `http://${host}:${address.port}`;
  let listening = true;
  const down = async (): Promise<void> => {
    if (!listening) return;
    listening = false;
    await new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      server.closeAllConnections();
    });
  };

  return {
    url,
    authorizeUrl: `${url}/login/oauth/authorize`,
    tokenUrl: `${url}/login/oauth/access_token`,
    apiUrl: url,
    requests,
    loginAs(login) {
      if (login !== undefined && !users.has(login)) throw new Error(`GitHub stand-in: no user ${login}`);
      state.login = login;
    },
    failAuthorizations(error) {
      state.failure = error ? { ...error } : undefined;
    },
    setCallbackUrl(callback) {
      state.callbackUrl = callback;
    },
    expireAccessTokens() {
      for (const issued of tokens.values()) issued.expiresAt = Date.now() - 1;
    },
    down,
    async up() {
      if (listening) return;
      await listen(server, address.port, host);
      listening = true;
    },
    close: down,
  };
}

/** The authorize error GitHub sends when the user cancels (docs: "Authorizing OAuth apps"). */
export const GITHUB_ACCESS_DENIED = { error: 'access_denied', error_description: 'The user has denied your application access.' } as const;

/**
 * GitHub: the redirect_uri's host and port must equal the callback URL's, and its path must be
 * the callback's path or below it.
 */
function redirectAllowed(redirectUri: string, callbackUrl: string): boolean {
  const asked = URL.parse(redirectUri);
  const registered = new URL(callbackUrl);
  if (!asked || asked.protocol !== registered.protocol || asked.host !== registered.host) return false;
  const base = registered.pathname.endsWith('/') ? registered.pathname : `${registered.pathname}/`;
  return asked.pathname === registered.pathname || asked.pathname.startsWith(base);
}

function userDocument(user: GitHubUser): Record<string, unknown> {
  return {
    login: user.login,
    id: user.id,
    node_id: Buffer.from(`04:User${user.id}`).toString('base64'),
    avatar_url: `https://avatars.githubusercontent.com/u/${user.id}?v=4`,
    type: 'User',
    site_admin: false,
    name: user.name ?? null,
    company: null,
    email: user.email ?? null,
  };
}

function orgDocument(login: string): Record<string, unknown> {
  const id = Number.parseInt(createHash('sha256').update(login).digest('hex').slice(0, 8), 16);
  return { login, id, node_id: Buffer.from(`04:Organization${id}`).toString('base64'), description: null };
}

/** Body parameters, form-encoded or JSON (GitHub accepts both). */
async function readParams(req: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if ((req.headers['content-type'] ?? '').includes('application/json')) {
    const parsed = JSON.parse(text || '{}') as Record<string, unknown>;
    return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }
  return Object.fromEntries(new URLSearchParams(text));
}

function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const match = /^basic\s+(\S+)$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

function secretMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** JSON only when asked for; GitHub's default is application/x-www-form-urlencoded, status 200 even for errors. */
function sendToken(req: IncomingMessage, res: ServerResponse, body: Record<string, string | number>): void {
  if ((req.headers.accept ?? '').includes('application/json')) return sendJson(res, 200, body);
  const form = new URLSearchParams(Object.entries(body).map(([k, v]): [string, string] => [k, String(v)])).toString();
  res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }).end(form);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
}

function sendApiError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { message, documentation_url: 'https://docs.github.com/rest', status: String(status) });
}

function sendHtml(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><title>${text}</title><h1>${text}</h1>`);
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
