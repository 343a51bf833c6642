import fc from 'fast-check';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { TokenEndpointAuth } from '../../src/config/types.js';
import { authenticateClient, DEFAULT_LIFETIME_SECONDS, grantParameters, readTokenAnswer } from '../../src/upstream-auth/token-request.js';

/** The token request the gateway makes (RFC 8693, Entra OBO, RFC 6749 §2.3.1, RFC 7523) and how it reads the answer: pure parts. */

const RFC8693 = { preset: 'rfc8693' as const, audience: 'upstream-api', resource: 'https://api.example.com/', scopes: ['read', 'write'] };

describe('grantParameters', () => {
  it('RFC 8693 §2.1: an access token for an access token, for the audience, resource and scope configured', () => {
    expect(Object.fromEntries(grantParameters(RFC8693, 'the-token'))).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'the-token',
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      audience: 'upstream-api',
      resource: 'https://api.example.com/',
      scope: 'read write',
    });
    expect([...grantParameters({ preset: 'rfc8693', scopes: [] }, 't').keys()]).toEqual(['grant_type', 'subject_token', 'subject_token_type', 'requested_token_type']);
  });

  it("Entra on-behalf-of: the jwt-bearer grant with the token as assertion, named by scope", () => {
    expect(Object.fromEntries(grantParameters({ preset: 'entra-obo', scopes: ['api://up/.default'] }, 'the-token'))).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: 'the-token',
      requested_token_use: 'on_behalf_of',
      scope: 'api://up/.default',
    });
  });
});

describe('authenticateClient', () => {
  const noKey = () => Promise.reject(new Error('no key'));

  it('client_secret_basic: id and secret form-urlencoded, then Basic (RFC 6749 §2.3.1); nothing in the body', async () => {
    const form = new URLSearchParams();
    const headers: Record<string, string> = {};
    await authenticateClient(form, headers, 'gw:1', { method: 'client_secret_basic', secret: 'p@ss word' }, 'https://idp/token', noKey);
    expect(Buffer.from(headers.authorization!.slice('Basic '.length), 'base64').toString()).toBe('gw%3A1:p%40ss%20word');
    expect([...form.keys()]).toEqual([]);
  });

  it('client_secret_post: in the body', async () => {
    const form = new URLSearchParams();
    const headers: Record<string, string> = {};
    await authenticateClient(form, headers, 'gw', { method: 'client_secret_post', secret: 's' }, 'https://idp/token', noKey);
    expect(Object.fromEntries(form)).toEqual({ client_id: 'gw', client_secret: 's' });
    expect(headers).toEqual({});
  });

  it('private_key_jwt (RFC 7523 §2.2, §3): iss = sub = client id, aud = the endpoint, short-lived, unique', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const auth: TokenEndpointAuth = { method: 'private_key_jwt', privateKey: '', algorithm: 'ES256', keyId: 'k1' };
    const assertions: string[] = [];
    for (let i = 0; i < 2; i++) {
      const form = new URLSearchParams();
      await authenticateClient(form, {}, 'gw', auth, 'https://idp.example.com/token', () => Promise.resolve(privateKey));
      expect(form.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      expect(form.get('client_id')).toBe('gw');
      assertions.push(form.get('client_assertion')!);
    }
    const { payload } = await jwtVerify(assertions[0]!, publicKey, { issuer: 'gw', subject: 'gw', audience: 'https://idp.example.com/token' });
    expect(payload.exp! - payload.iat!).toBe(60);
    expect(decodeProtectedHeader(assertions[0]!)).toEqual({ alg: 'ES256', typ: 'JWT', kid: 'k1' });
    expect(decodeJwt(assertions[0]!).jti).not.toBe(decodeJwt(assertions[1]!).jti);
  });
});

describe('readTokenAnswer', () => {
  const now = 1_700_000_000;

  it('an issued Bearer token, its lifetime from expires_in, else its exp, else a short default', async () => {
    expect(readTokenAnswer(200, { access_token: 'abc', token_type: 'Bearer', expires_in: 3600 }, now)).toEqual({ kind: 'issued', accessToken: 'abc', lifetimeSeconds: 3600 });
    expect(readTokenAnswer(200, { access_token: 'abc', token_type: 'bearer', expires_in: '120' }, now)).toMatchObject({ lifetimeSeconds: 120 });
    const { privateKey } = await generateKeyPair('ES256');
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setExpirationTime(now + 500).sign(privateKey);
    expect(readTokenAnswer(200, { access_token: jwt, token_type: 'Bearer' }, now)).toMatchObject({ lifetimeSeconds: 500 });
    expect(readTokenAnswer(200, { access_token: 'opaque', token_type: 'Bearer' }, now)).toMatchObject({ lifetimeSeconds: DEFAULT_LIFETIME_SECONDS });
  });

  it('refuses what it cannot send as a Bearer header value', () => {
    expect(readTokenAnswer(200, { access_token: 'abc', token_type: 'N_A' }, now).kind).toBe('unavailable');
    expect(readTokenAnswer(200, { access_token: 'a\r\nb', token_type: 'Bearer' }, now).kind).toBe('unavailable');
    expect(readTokenAnswer(200, { token_type: 'Bearer' }, now).kind).toBe('unavailable');
    expect(readTokenAnswer(200, 'not json', now).kind).toBe('unavailable');
  });

  it("the user's token refused is the client's to fix; the gateway's own client refused, or the IdP failing, is not", () => {
    for (const error of ['invalid_grant', 'interaction_required', 'consent_required']) expect(readTokenAnswer(400, { error }, now)).toEqual({ kind: 'refused', error });
    for (const [status, error] of [[401, 'invalid_client'], [400, 'unauthorized_client'], [400, 'invalid_scope'], [400, 'invalid_target'], [400, 'unsupported_grant_type'], [503, 'temporarily_unavailable'], [500, undefined]] as const) {
      expect(readTokenAnswer(status, error ? { error } : undefined, now).kind).toBe('unavailable');
    }
  });

  it('only a 200 with a usable Bearer token is ever issued, whatever the status and body', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), fc.jsonValue(), (status, body) => {
        const answer = readTokenAnswer(status, body, now);
        if (answer.kind === 'issued') {
          expect(status).toBe(200);
          expect(answer.accessToken).toMatch(/^[\x21-\x7e]+$/);
          expect(answer.lifetimeSeconds).toBeGreaterThan(0);
        }
        if (answer.kind === 'refused') expect([400, 401]).toContain(status);
      }),
    );
  });
});
