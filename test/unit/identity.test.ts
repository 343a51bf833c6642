import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { calculateJwkThumbprint, createLocalJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, exportPKCS8, generateKeyPair, importJWK, jwtVerify, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { parseConfig } from '../../src/config/load.js';
import { headerSafe, identityHeaderNames, identityHeadersFor, IdentitySigner } from '../../src/proxy/identity.js';
import { minimalConfig } from '../support/config-fixtures.js';

/**
 * The identity token an upstream may verify instead of trusting plain headers: signed by the
 * gateway's key, published as a JWK Set with no private member, bound to one upstream (aud),
 * never outliving the client's token, and reused only for half its lifetime.
 */
const GATEWAY = 'https://gateway.example.test';
const UPSTREAM = 'http://127.0.0.1:9500';
/** A whole second, so iat and the half-life boundaries are exact. */
const NOW_MS = 1_700_000_000_000;
const NOW = NOW_MS / 1000;

const principal = (overrides: Partial<Principal> = {}): Principal => ({
  issuer: 'https://idp.example.test',
  subject: 'alice',
  clientId: 'agent-1',
  scopes: new Set(['todo:read', 'todo:write']),
  expiresAt: NOW + 600,
  claims: {},
  ...overrides,
});

async function verify(signer: IdentitySigner, token: string, nowMs = NOW_MS, algorithm = 'ES256') {
  return jwtVerify(token, createLocalJWKSet(signer.jwks), {
    issuer: GATEWAY,
    audience: UPSTREAM,
    algorithms: [algorithm],
    typ: 'JWT',
    currentDate: new Date(nowMs),
  });
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

describe('IdentitySigner with a key generated at startup', () => {
  let signer: IdentitySigner;
  beforeAll(async () => {
    signer = await IdentitySigner.create({ algorithm: 'ES256', ttlMs: 60_000 }, GATEWAY);
  });

  it('publishes one public P-256 key, named by its RFC 7638 thumbprint, with no private member', async () => {
    expect(signer.jwks.keys).toHaveLength(1);
    const [key] = signer.jwks.keys as [JWK];
    expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(key.kid).toBe(await calculateJwkThumbprint(key));
    for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
  });

  it('signs exactly the claims the upstream needs, verifiable with the published keys', async () => {
    const token = await signer.sign(principal(), UPSTREAM, NOW_MS);
    const { payload, protectedHeader } = await verify(signer, token);
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'JWT', kid: signer.jwks.keys[0]!.kid });
    expect(payload).toEqual({
      iss: GATEWAY,
      aud: UPSTREAM,
      sub: 'alice',
      client_id: 'agent-1',
      scope: 'todo:read todo:write',
      token_iss: 'https://idp.example.test',
      iat: NOW,
      exp: NOW + 60,
    });
  });

  it('leaves client_id out when the client token names no client', async () => {
    const token = await signer.sign(principal({ clientId: undefined, subject: 'no-client' }), UPSTREAM, NOW_MS);
    const { payload } = await verify(signer, token);
    expect(payload).not.toHaveProperty('client_id');
    expect(payload.sub).toBe('no-client');
  });

  it('never outlives the client token', async () => {
    const token = await signer.sign(principal({ subject: 'short', expiresAt: NOW + 20 }), UPSTREAM, NOW_MS);
    expect(decodeJwt(token)).toMatchObject({ iat: NOW, exp: NOW + 20 });
  });

  it('is never born expired: a client token admitted within the clock tolerance past its exp gets the shortest lifetime', async () => {
    const token = await signer.sign(principal({ subject: 'late', clientId: undefined, expiresAt: NOW - 10 }), UPSTREAM, NOW_MS);
    const claims = decodeJwt(token);
    expect(claims.exp! - claims.iat!).toBe(1);
    expect(claims).toMatchObject({ iat: NOW, exp: NOW + 1 });
  });

  it('is refused for another audience', async () => {
    const token = await signer.sign(principal(), 'http://127.0.0.1:9600', NOW_MS);
    await expect(verify(signer, token)).rejects.toThrow(/aud/);
  });

  it('is reused for half its lifetime, then signed afresh', async () => {
    const first = await signer.sign(principal({ subject: 'reuse' }), UPSTREAM, NOW_MS);
    expect(await signer.sign(principal({ subject: 'reuse' }), UPSTREAM, NOW_MS + 29_999)).toBe(first);
    const fresh = await signer.sign(principal({ subject: 'reuse' }), UPSTREAM, NOW_MS + 30_000);
    expect(fresh).not.toBe(first);
    expect(decodeJwt(fresh)).toMatchObject({ iat: NOW + 30, exp: NOW + 90 });
    // The fresh one is what is reused next.
    expect(await signer.sign(principal({ subject: 'reuse' }), UPSTREAM, NOW_MS + 59_999)).toBe(fresh);
  });

  it('reuses a capped token for half of its capped lifetime only', async () => {
    const capped = principal({ subject: 'capped', expiresAt: NOW + 20 });
    const first = await signer.sign(capped, UPSTREAM, NOW_MS);
    expect(await signer.sign(capped, UPSTREAM, NOW_MS + 9_999)).toBe(first);
    const fresh = await signer.sign(capped, UPSTREAM, NOW_MS + 10_000);
    expect(fresh).not.toBe(first);
    expect(decodeJwt(fresh)).toMatchObject({ iat: NOW + 10, exp: NOW + 20 });
  });

  it('does not hand a shorter-lived client token the identity token of a longer-lived one', async () => {
    const long = await signer.sign(principal({ subject: 'renewed', expiresAt: NOW + 600 }), UPSTREAM, NOW_MS);
    expect(decodeJwt(long).exp).toBe(NOW + 60);
    const short = await signer.sign(principal({ subject: 'renewed', expiresAt: NOW + 15 }), UPSTREAM, NOW_MS + 1_000);
    expect(short).not.toBe(long);
    expect(decodeJwt(short)).toMatchObject({ iat: NOW + 1, exp: NOW + 15 });
  });

  it('never reuses a token across audiences, subjects, issuers, clients or scopes', async () => {
    const base = await signer.sign(principal({ subject: 'distinct' }), UPSTREAM, NOW_MS);
    const variants = await Promise.all([
      signer.sign(principal({ subject: 'distinct' }), 'http://127.0.0.1:9600', NOW_MS),
      signer.sign(principal({ subject: 'distinct2' }), UPSTREAM, NOW_MS),
      signer.sign(principal({ subject: 'distinct', issuer: 'https://other-idp.example.test' }), UPSTREAM, NOW_MS),
      signer.sign(principal({ subject: 'distinct', clientId: 'agent-2' }), UPSTREAM, NOW_MS),
      signer.sign(principal({ subject: 'distinct', scopes: new Set(['todo:read']) }), UPSTREAM, NOW_MS),
    ]);
    expect(new Set([base, ...variants]).size).toBe(6);
    expect(decodeJwt(variants[0]!).aud).toBe('http://127.0.0.1:9600');
    expect(decodeJwt(variants[2]!).token_iss).toBe('https://other-idp.example.test');
    expect(decodeJwt(variants[3]!).client_id).toBe('agent-2');
    expect(decodeJwt(variants[4]!).scope).toBe('todo:read');
  });

  it('honours the configured lifetime', async () => {
    const brief = await IdentitySigner.create({ algorithm: 'ES256', ttlMs: 5_000 }, GATEWAY);
    const token = await brief.sign(principal(), UPSTREAM, NOW_MS);
    expect(decodeJwt(token)).toMatchObject({ iat: NOW, exp: NOW + 5 });
    // A token of one gateway is not verified by another's keys.
    await expect(verify(signer, token)).rejects.toThrow();
  });
});

describe.each(['ES256', 'RS256'] as const)('IdentitySigner with a PKCS#8 %s key from identityToken.signingKeyFile', (algorithm) => {
  let dir: string;
  let publicJwk: JWK;
  let signer: IdentitySigner;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-identity-'));
    const pair = await generateKeyPair(algorithm, { extractable: true });
    publicJwk = await exportJWK(pair.publicKey);
    await writeFile(join(dir, 'identity.pem'), await exportPKCS8(pair.privateKey));
    // Through the loader, as a deployment does: the file is read relative to the config.
    const config = await parseConfig(
      join(dir, 'gateway.yaml'),
      minimalConfig({ head: `identityToken: { signingKeyFile: identity.pem, algorithm: ${algorithm}, ttl: 30s }\n`, policy: resolve('policies/todo.yaml') }),
    );
    expect(config.identityToken).toMatchObject({ algorithm, ttlMs: 30_000 });
    signer = await IdentitySigner.create(config.identityToken, GATEWAY);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('publishes exactly the public half of the file key', async () => {
    const [key] = signer.jwks.keys as [JWK];
    expect(key).toEqual({ ...publicJwk, alg: algorithm, use: 'sig', kid: await calculateJwkThumbprint(publicJwk) });
    for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
  });

  it('signs with it: the token verifies against the published JWKS and the original public key', async () => {
    const token = await signer.sign(principal(), UPSTREAM, NOW_MS);
    expect(decodeProtectedHeader(token)).toEqual({ alg: algorithm, typ: 'JWT', kid: await calculateJwkThumbprint(publicJwk) });
    const { payload } = await verify(signer, token, NOW_MS, algorithm);
    expect(payload).toMatchObject({ sub: 'alice', iat: NOW, exp: NOW + 30 });
    const direct = await jwtVerify(token, await importJWK(publicJwk, algorithm), { currentDate: new Date(NOW_MS) });
    expect(direct.payload.sub).toBe('alice');
  });

  it('is refused by the loader when the key does not match the algorithm', async () => {
    const other = algorithm === 'ES256' ? 'RS256' : 'ES256';
    await expect(
      parseConfig(
        join(dir, 'gateway.yaml'),
        minimalConfig({ head: `identityToken: { signingKeyFile: identity.pem, algorithm: ${other} }\n`, policy: resolve('policies/todo.yaml') }),
      ),
    ).rejects.toThrow(`${join(dir, 'gateway.yaml')}:1:34: identityToken.signingKeyFile is not a PKCS#8 ${other} key`);
  });
});

describe('IdentitySigner with a key that imports but cannot sign', () => {
  it('refuses to start with an RSA key under 2048 bits, rather than fail every request', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await expect(IdentitySigner.create({ signingKey: weak, algorithm: 'RS256', ttlMs: 60_000 }, GATEWAY)).rejects.toThrow(
      'identityToken: the signing key cannot sign RS256 tokens: RS256 requires key modulusLength to be 2048 bits or larger',
    );
  });
});

describe('identity headers', () => {
  const ALL = { subject: 'x-mcp-subject', client: 'x-mcp-client-id', scopes: 'x-mcp-scopes', issuer: 'x-mcp-issuer', token: 'x-mcp-identity' };

  it('sets every configured header from the principal, the token signed for the upstream origin', async () => {
    const signer = await IdentitySigner.create({ algorithm: 'ES256', ttlMs: 60_000 }, GATEWAY);
    const headers = await identityHeadersFor(ALL, principal({ expiresAt: Math.floor(Date.now() / 1000) + 600 }), new URL(`${UPSTREAM}/mcp?x=1`), signer);
    expect(Object.keys(headers).sort()).toEqual(['x-mcp-client-id', 'x-mcp-identity', 'x-mcp-issuer', 'x-mcp-scopes', 'x-mcp-subject']);
    expect(headers).toMatchObject({ 'x-mcp-subject': 'alice', 'x-mcp-client-id': 'agent-1', 'x-mcp-scopes': 'todo:read todo:write', 'x-mcp-issuer': 'https://idp.example.test' });
    const { payload } = await jwtVerify(headers['x-mcp-identity']!, createLocalJWKSet(signer.jwks), { audience: UPSTREAM, issuer: GATEWAY });
    expect(payload.sub).toBe('alice');
  });

  it('sets only the configured ones, and no client header when the token names no client', async () => {
    const headers = await identityHeadersFor({ subject: 'x-sub', client: 'x-client' }, principal({ clientId: undefined, subject: 'bob\r\nx-sub: admin' }), new URL(UPSTREAM), undefined);
    expect(headers).toEqual({ 'x-sub': 'bob%0D%0Ax-sub%3A%20admin' });
  });

  it('names every header a route sets', () => {
    expect(identityHeaderNames(ALL).sort()).toEqual(['x-mcp-client-id', 'x-mcp-identity', 'x-mcp-issuer', 'x-mcp-scopes', 'x-mcp-subject']);
    expect(identityHeaderNames({})).toEqual([]);
  });
});

describe('headerSafe', () => {
  it.each([
    ['alice', 'alice'],
    ['todo:read todo:write', 'todo:read todo:write'],
    ['https://idp.example.test/realms/x', 'https://idp.example.test/realms/x'],
    ['', ''],
    ['alice\r\nx-mcp-subject: admin', 'alice%0D%0Ax-mcp-subject%3A%20admin'],
    ['a\nb', 'a%0Ab'],
    ['tab\there', 'tab%09here'],
    ['nul\0', 'nul%00'],
    ['del\x7f', 'del%7F'],
    ['zoë', 'zo%C3%AB'],
    ['用户', '%E7%94%A8%E6%88%B7'],
    ['🚀', '%F0%9F%9A%80'],
    ['100%', '100%25'],
    ['%41', '%2541'],
    [' alice', '%20alice'],
    ['alice ', 'alice%20'],
    [' ', '%20'],
    ['lone\ud800', 'lone%EF%BF%BD'],
    ['\udc00lone', '%EF%BF%BDlone'],
  ])('%j → %j', (value, expected) => {
    expect(headerSafe(value)).toBe(expected);
  });

  it('always gives a valid header value from which decodeURIComponent recovers the claim', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (value) => {
        const safe = headerSafe(value);
        // Visible ASCII, inner spaces only: nothing HTTP would strip, split or reject.
        expect(safe).toMatch(/^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/);
        expect(decodeURIComponent(safe)).toBe(Buffer.from(value, 'utf8').toString('utf8'));
      }),
      { numRuns: 2_000 },
    );
  });
});
