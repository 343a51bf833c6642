import { createHash, randomBytes } from 'node:crypto';
import { TestBrowser, type AuthorizationOutcome } from './as-browser.js';

/**
 * An OAuth client of the gateway's authorization server, spoken by hand (raw HTTP), so tests can
 * change one parameter at a time: registration, PKCE, the authorization URL, token requests.
 */
export const CLIENT_REDIRECT = 'http://127.0.0.1:7777/callback';

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export async function registerClient(issuer: string, metadata: Record<string, unknown> = {}): Promise<string> {
  const response = await fetch(`${issuer}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'raw test client', redirect_uris: [CLIENT_REDIRECT], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none', ...metadata }),
  });
  const body = (await response.json()) as { client_id?: string };
  if (response.status !== 201 || !body.client_id) throw new Error(`registration failed: ${response.status} ${JSON.stringify(body)}`);
  return body.client_id;
}

export interface AuthorizationRequest {
  readonly clientId: string;
  readonly challenge: string;
  readonly resource: string;
  readonly scope?: string;
  readonly state?: string;
  readonly redirectUri?: string;
  /** Parameters to set (a string) or remove (null) after the defaults. */
  readonly override?: Readonly<Record<string, string | null>>;
}

export function authorizationUrl(issuer: string, request: AuthorizationRequest): URL {
  const url = new URL(`${issuer}/oauth/authorize`);
  const params: Record<string, string | null> = {
    response_type: 'code',
    client_id: request.clientId,
    redirect_uri: request.redirectUri ?? CLIENT_REDIRECT,
    code_challenge: request.challenge,
    code_challenge_method: 'S256',
    resource: request.resource,
    state: request.state ?? 'client-state-1',
    ...(request.scope !== undefined ? { scope: request.scope } : {}),
    ...request.override,
  };
  for (const [key, value] of Object.entries(params)) if (value !== null) url.searchParams.set(key, value);
  return url;
}

export async function tokenRequest(issuer: string, params: Record<string, string>): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`${issuer}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, headers: response.headers };
}

/** Register, log in (approving consent), and trade the code: a complete grant for a client. */
export async function fullGrant(issuer: string, resource: string, options: { subject?: string; scope?: string; clientId?: string; browser?: TestBrowser } = {}) {
  const clientId = options.clientId ?? (await registerClient(issuer));
  const { verifier, challenge } = pkcePair();
  const browser = options.browser ?? new TestBrowser({ subject: options.subject ?? 'alice' });
  const { outcome, consentShown } = await browser.authorize(authorizationUrl(issuer, { clientId, challenge, resource, ...(options.scope ? { scope: options.scope } : {}) }), CLIENT_REDIRECT);
  const code = codeOf(outcome);
  const token = await tokenRequest(issuer, { grant_type: 'authorization_code', code, code_verifier: verifier, client_id: clientId, redirect_uri: CLIENT_REDIRECT, resource });
  if (token.status !== 200) throw new Error(`token request failed: ${JSON.stringify(token.body)}`);
  return { clientId, browser, consentShown, code, verifier, token: token.body as { access_token: string; refresh_token?: string; scope: string } };
}

export function codeOf(outcome: AuthorizationOutcome): string {
  if (outcome.kind !== 'redirect' || outcome.code === undefined) throw new Error(`no code: ${JSON.stringify(outcome.kind === 'page' ? { status: outcome.status, html: outcome.html.slice(0, 400) } : outcome)}`);
  return outcome.code;
}
