import {
  base64url,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { refusalOf, rejectionOf } from '../support/refusals.js';
import { extractBearerToken } from '../../src/auth/bearer.js';
import { claimAt, scopesFromClaims, stringClaim } from '../../src/auth/claims.js';
import { PRESETS } from '../../src/auth/presets.js';
import { principalKey } from '../../src/auth/principal.js';
import { audienceIncludes } from '../../src/auth/audience.js';
import { unverifiedIssuer, verifyJwtAccessToken, type TrustedIssuer } from '../../src/auth/verify-jwt.js';
import { ASYMMETRIC_ALGORITHMS, type IssuerConfig } from '../../src/config/types.js';
import { Refusal } from '../../src/errors.js';

const ISSUER = 'https://idp.example.test';
const RESOURCE = 'https://gateway.example.test/mcp';
/** Frozen clock: every token is issued and checked relative to this instant. */
const NOW = new Date('2030-01-01T00:00:00Z');
const NOW_S = Math.floor(NOW.getTime() / 1000);

interface SigningKey {
  readonly alg: 'RS256' | 'ES256';
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

async function signingKey(alg: 'RS256' | 'ES256', kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg };
  return { alg, kid, privateKey, publicJwk };
}

function issuerConfig(): IssuerConfig {
  return { issuer: ISSUER, preset: 'generic', algorithms: [...ASYMMETRIC_ALGORITHMS], clockToleranceSeconds: 30, typ: ['at+jwt'], dpop: 'allowed', requireClaims: {}, claims: PRESETS.generic.claims };
}

function trustedIssuer(...keys: SigningKey[]): TrustedIssuer {
  return { config: issuerConfig(), keys: createLocalJWKSet({ keys: keys.map((k) => k.publicJwk) }) };
}

interface TokenOptions {
  readonly claims?: JWTPayload & Record<string, unknown>;
  /** Claims to remove from the defaults. */
  readonly omit?: readonly string[];
  readonly typ?: string | undefined;
  readonly kid?: string;
}

/** A valid RFC 9068 access token unless the options say otherwise. */
async function accessToken(key: SigningKey, options: TokenOptions = {}): Promise<string> {
  const payload: Record<string, unknown> = {
    iss: ISSUER,
    sub: 'user-42',
    aud: RESOURCE,
    iat: NOW_S - 10,
    exp: NOW_S + 300,
    client_id: 'agent-1',
    scope: 'todo:read todo:write',
    ...options.claims,
  };
  for (const claim of options.omit ?? []) delete payload[claim];
  const typ = 'typ' in options ? options.typ : 'at+jwt';
  const header = { alg: key.alg, kid: options.kid ?? key.kid, ...(typ === undefined ? {} : { typ }) };
  return new SignJWT(payload).setProtectedHeader(header).sign(key.privateKey);
}

function encodeSegment(value: object): string {
  return base64url.encode(JSON.stringify(value));
}



let rsa: SigningKey;
let ec: SigningKey;
let impostor: SigningKey;
let issuer: TrustedIssuer;

beforeAll(async () => {
  rsa = await signingKey('RS256', 'rsa-1');
  ec = await signingKey('ES256', 'ec-1');
  impostor = await signingKey('RS256', 'rsa-1'); // same kid as the trusted key, other key material
  issuer = trustedIssuer(rsa, ec);
});

const verify = (token: string, now: Date = NOW, resource: string = RESOURCE) => verifyJwtAccessToken(token, issuer, resource, now);

describe('verifyJwtAccessToken: accepted tokens', () => {
  it('returns the principal of a valid RS256 at+jwt', async () => {
    const principal = await verify(await accessToken(rsa));
    expect(principal.issuer).toBe(ISSUER);
    expect(principal.subject).toBe('user-42');
    expect(principal.clientId).toBe('agent-1');
    expect([...principal.scopes]).toEqual(['todo:read', 'todo:write']);
    expect(principal.expiresAt).toBe(NOW_S + 300);
  });

  it('returns the principal of a valid ES256 at+jwt', async () => {
    const principal = await verify(await accessToken(ec, { claims: { sub: 'ec-user' } }));
    expect(principal.subject).toBe('ec-user');
  });

  it('takes the client id from azp when client_id is absent', async () => {
    const principal = await verify(await accessToken(rsa, { omit: ['client_id'], claims: { azp: 'agent-azp' } }));
    expect(principal.clientId).toBe('agent-azp');
  });

  it('has no client id when neither client_id nor azp is present', async () => {
    const principal = await verify(await accessToken(rsa, { omit: ['client_id'] }));
    expect(principal.clientId).toBeUndefined();
  });

  it('reads scopes from an scp array', async () => {
    const principal = await verify(await accessToken(rsa, { omit: ['scope'], claims: { scp: ['a:read', 'b:write'] } }));
    expect([...principal.scopes].sort()).toEqual(['a:read', 'b:write']);
  });

  it('accepts an audience array that contains the resource', async () => {
    const principal = await verify(await accessToken(rsa, { claims: { aud: ['https://other.example.test', RESOURCE] } }));
    expect(principal.subject).toBe('user-42');
  });

  it('accepts a token expired less than the 30s clock tolerance ago', async () => {
    const token = await accessToken(rsa, { claims: { iat: NOW_S - 600, exp: NOW_S - 20 } });
    expect((await verify(token)).subject).toBe('user-42');
  });

  it('accepts typ application/at+jwt', async () => {
    const principal = await verify(await accessToken(rsa, { typ: 'application/at+jwt' }));
    expect(principal.subject).toBe('user-42');
  });
});

describe('verifyJwtAccessToken: refused tokens', () => {
  it('refuses a token bound by a confirmation method it cannot check (mTLS x5t#S256, or a malformed jkt)', async () => {
    for (const cnf of [{ 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' }, { jkt: 42 }, { jkt: 'a', 'x5t#S256': 'b' }, 'jkt']) {
      const refusal = await rejectionOf(verifyJwtAccessToken(await accessToken(rsa, { claims: { cnf } }), trustedIssuer(rsa), RESOURCE, NOW));
      expect(refusal.message).toBe('The access token is bound by a confirmation method this resource cannot check');
    }
  });

  it('refuses a typ header that is not a string', async () => {
    const refusal = await rejectionOf(verifyJwtAccessToken(await accessToken(rsa, { typ: 123 as unknown as string }), trustedIssuer(rsa), RESOURCE, NOW));
    expect(refusal.message).toBe('The access token type is not accepted');
  });

  it('compares non-URL audiences exactly (an Entra application GUID)', async () => {
    const config = { ...issuerConfig(), audiences: ['6e74172b-be56-4843-9ff4-e66a39bb12e3'] };
    const keys = trustedIssuer(rsa).keys;
    await expect(verifyJwtAccessToken(await accessToken(rsa, { claims: { aud: '6e74172b-be56-4843-9ff4-e66a39bb12e3' } }), { config, keys }, RESOURCE, NOW)).resolves.toMatchObject({ subject: 'user-42' });
    expect((await rejectionOf(verifyJwtAccessToken(await accessToken(rsa, { claims: { aud: '6E74172B-BE56-4843-9FF4-E66A39BB12E3' } }), { config, keys }, RESOURCE, NOW))).message).toBe('The access token is not for this resource');
  });

  it('refuses a token for another audience', async () => {
    const refusal = await rejectionOf(verify(await accessToken(rsa, { claims: { aud: 'https://other.example.test/mcp' } })));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses a token for this audience when presented to another resource', async () => {
    const refusal = await rejectionOf(verify(await accessToken(rsa), NOW, 'https://gateway.example.test/other'));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses a token from another issuer signed by a trusted key', async () => {
    const refusal = await rejectionOf(verify(await accessToken(rsa, { claims: { iss: 'https://evil.example.test' } })));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses a token expired beyond the clock tolerance', async () => {
    const token = await accessToken(rsa, { claims: { iat: NOW_S - 600, exp: NOW_S - 31 } });
    const refusal = await rejectionOf(verify(token));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses the same token within tolerance at one instant and beyond it at a later one', async () => {
    const token = await accessToken(rsa, { claims: { exp: NOW_S } });
    expect((await verify(token, new Date(NOW.getTime() + 29_000))).subject).toBe('user-42');
    const refusal = await rejectionOf(verify(token, new Date(NOW.getTime() + 31_000)));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses a token whose nbf is beyond the tolerance in the future', async () => {
    const refusal = await rejectionOf(verify(await accessToken(rsa, { claims: { nbf: NOW_S + 120 } })));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses a token without exp', async () => {
    const refusal = await rejectionOf(verify(await accessToken(rsa, { omit: ['exp'] })));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses typ JWT', async () => {
    const refusal = await rejectionOf(verify(await accessToken(rsa, { typ: 'JWT' })));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses a token without typ', async () => {
    const refusal = await rejectionOf(verify(await accessToken(rsa, { typ: undefined })));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses an unsecured alg none token', async () => {
    const header = encodeSegment({ alg: 'none', typ: 'at+jwt', kid: 'rsa-1' });
    const payload = encodeSegment({ iss: ISSUER, sub: 'user-42', aud: RESOURCE, exp: NOW_S + 300, scope: 'todo:read' });
    const refusal = await rejectionOf(verify(`${header}.${payload}.`));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses an HS256 token signed with a shared secret', async () => {
    const secret = new TextEncoder().encode('a-shared-secret-of-at-least-32-bytes!!');
    const token = await new SignJWT({ iss: ISSUER, sub: 'user-42', aud: RESOURCE, exp: NOW_S + 300 })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: 'rsa-1' })
      .sign(secret);
    const refusal = await rejectionOf(verify(token));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses a token signed by another key that reuses a trusted kid', async () => {
    const refusal = await rejectionOf(verify(await accessToken(impostor)));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses a token whose kid names no trusted key', async () => {
    const refusal = await rejectionOf(verify(await accessToken(rsa, { kid: 'unknown-kid' })));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses a token without sub', async () => {
    const refusal = await rejectionOf(verify(await accessToken(rsa, { omit: ['sub'] })));
    expect(refusal.code).toBe('invalid_token');
  });

  it('refuses a token whose signature was altered', async () => {
    const token = await accessToken(rsa);
    const [h, , s] = token.split('.') as [string, string, string];
    const forgedPayload = encodeSegment({ iss: ISSUER, sub: 'admin', aud: RESOURCE, exp: NOW_S + 300, scope: 'todo:admin' });
    const refusal = await rejectionOf(verify(`${h}.${forgedPayload}.${s}`));
    expect(refusal.code).toBe('invalid_token');
  });

  it('maps a key getter failing with a non-JOSE error (network) to issuer_unavailable', async () => {
    const failing: JWTVerifyGetKey = async () => {
      throw new TypeError('fetch failed');
    };
    const refusal = await rejectionOf(verifyJwtAccessToken(await accessToken(rsa), { config: issuerConfig(), keys: failing }, RESOURCE, NOW));
    expect(refusal.code).toBe('issuer_unavailable');
    expect(refusal.details.retryAfterSeconds).toBeGreaterThan(0);
  });

  it('passes through a Refusal thrown by the key getter unchanged', async () => {
    const unavailable = new Refusal('issuer_unavailable', 'down', { retryAfterSeconds: 5 });
    const keys: JWTVerifyGetKey = async () => {
      throw unavailable;
    };
    const refusal = await rejectionOf(verifyJwtAccessToken(await accessToken(rsa), { config: issuerConfig(), keys }, RESOURCE, NOW));
    expect(refusal).toBe(unavailable);
  });
});

describe('unverifiedIssuer', () => {
  it('reads iss without verifying the signature', async () => {
    expect(unverifiedIssuer(await accessToken(impostor, { claims: { iss: 'https://any.example.test' } }))).toBe('https://any.example.test');
  });

  it('throws invalid_token for a malformed token string', () => {
    expect(refusalOf(() => unverifiedIssuer('not-a-jwt')).code).toBe('invalid_token');
    expect(refusalOf(() => unverifiedIssuer('a.b.c')).code).toBe('invalid_token');
  });

  it('throws invalid_token for a token without a string iss', () => {
    const token = `${encodeSegment({ alg: 'RS256' })}.${encodeSegment({ iss: 42, sub: 'x' })}.sig`;
    expect(refusalOf(() => unverifiedIssuer(token)).code).toBe('invalid_token');
  });
});

describe('extractBearerToken', () => {
  it('refuses a missing header with missing_token', () => {
    expect(refusalOf(() => extractBearerToken(undefined)).code).toBe('missing_token');
  });

  it('refuses an empty or blank header with missing_token', () => {
    expect(refusalOf(() => extractBearerToken('')).code).toBe('missing_token');
    expect(refusalOf(() => extractBearerToken('   ')).code).toBe('missing_token');
  });

  it('treats another scheme as no credentials: missing_token, no error code (RFC 6750 §3.1)', () => {
    for (const header of ['Basic x', 'DPoP abc', 'Bearerabc']) expect(refusalOf(() => extractBearerToken(header)).code).toBe('missing_token');
  });

  it('refuses a malformed Bearer credential with invalid_token', () => {
    for (const header of ['Bearer', 'Bearer a b', 'Bearer a=b']) expect(refusalOf(() => extractBearerToken(header)).code).toBe('invalid_token');
  });

  it('accepts the scheme case-insensitively', () => {
    expect(extractBearerToken('bearer abc')).toBe('abc');
    expect(extractBearerToken('BEARER abc.def-ghi_~+/==')).toBe('abc.def-ghi_~+/==');
  });

  it('refuses a token with spaces inside', () => {
    expect(refusalOf(() => extractBearerToken('Bearer abc def')).code).toBe('invalid_token');
  });

  it('refuses a scheme without a token', () => {
    expect(refusalOf(() => extractBearerToken('Bearer')).code).toBe('invalid_token');
    expect(refusalOf(() => extractBearerToken('Bearer ')).code).toBe('invalid_token');
  });

  it('refuses characters outside b64token', () => {
    expect(refusalOf(() => extractBearerToken('Bearer abc,def')).code).toBe('invalid_token');
    expect(refusalOf(() => extractBearerToken('Bearer a=b')).code).toBe('invalid_token');
  });
});

describe('principal claims', () => {
  it('merges scope string and scp array, ignoring empty and non-string entries', () => {
    expect([...scopesFromClaims({ scope: ' a  b ', scp: ['c', '', 7, 'a'] }, PRESETS.generic.claims)]).toEqual(['a', 'b', 'c']);
  });

  it('reads scp given as a string', () => {
    expect([...scopesFromClaims({ scp: 'x y' }, PRESETS.generic.claims)]).toEqual(['x', 'y']);
  });

  it('prefers client_id over azp and ignores empty values', () => {
    const client = PRESETS.generic.claims.client;
    expect(stringClaim({ client_id: 'c', azp: 'a' }, client)).toBe('c');
    expect(stringClaim({ client_id: '', azp: 'a' }, client)).toBe('a');
    expect(stringClaim({ client_id: 5 }, client)).toBeUndefined();
  });

  it('finds claims by exact name first (namespaced claims hold dots), then by dot path', () => {
    const claims = { 'https://acme.com/roles': ['a'], realm_access: { roles: ['r'] }, list: [{ x: 1 }] };
    expect(claimAt(claims, 'https://acme.com/roles')).toEqual(['a']);
    expect(claimAt(claims, 'realm_access.roles')).toEqual(['r']);
    expect(claimAt(claims, 'realm_access.missing')).toBeUndefined();
    expect(claimAt(claims, 'list.0.x')).toBeUndefined(); // arrays are not paths
    expect(claimAt(claims, 'constructor')).toBeUndefined(); // own properties only
    expect([...scopesFromClaims(claims, { scopes: ['realm_access.roles'], scopePrefix: 'r' })]).toEqual([]);
  });

  it('keys principals by issuer and subject together', () => {
    expect(principalKey({ issuer: 'https://a', subject: 's' })).not.toBe(principalKey({ issuer: 'https://b', subject: 's' }));
    expect(principalKey({ issuer: 'a","b', subject: 'c' })).not.toBe(principalKey({ issuer: 'a', subject: 'b","c' }));
  });
});

describe('audience matching (MCP authorization §Canonical Server URI)', () => {
  const resource = 'https://mcp.example.com/mcp';

  it('accepts the resource in canonical form: uppercase scheme and host, default port', () => {
    for (const aud of [resource, 'HTTPS://MCP.Example.COM/mcp', 'https://mcp.example.com:443/mcp', ['other', resource]]) {
      expect(audienceIncludes(aud, resource), JSON.stringify(aud)).toBe(true);
    }
  });

  it('compares the path exactly and refuses anything else', () => {
    for (const aud of ['https://mcp.example.com/MCP', 'https://mcp.example.com/mcp/', 'https://mcp.example.com', 'http://mcp.example.com/mcp', 'https://mcp.example.com:8443/mcp', 'not a uri', undefined, 42, []]) {
      expect(audienceIncludes(aud, resource), JSON.stringify(aud)).toBe(false);
    }
  });

  it('never matches when neither side is a URI', () => {
    expect(audienceIncludes('not a uri', 'also not')).toBe(false);
  });
});
