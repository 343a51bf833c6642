/**
 * The JWKS lifecycle against a real HTTP server on 127.0.0.1 that serves keys we control and
 * counts requests: caching, rotation, the cooldown on unknown kids, IdP outages (last-known-good
 * keys), broken answers, unusable keys, inline keys and the jwksUri override. Cooldown and
 * max-age are driven by a fake clock, not by sleeping.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, sign } from 'node:crypto';
import { base64url, errors, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { issuerConfig } from '../support/config-fixtures.js';
import { rejectionOf } from '../support/refusals.js';
import { IssuerDirectory } from '../../src/auth/issuers.js';
import { fetchJwks, IssuerKeySet, type KeySetLogger } from '../../src/auth/key-set.js';
import { verifyJwtAccessToken } from '../../src/auth/verify-jwt.js';
import { createLogger } from '../../src/observability/logger.js';

const RESOURCE = 'https://gateway.example.test/mcp';
const COOLDOWN_MS = 30_000;
const MAX_AGE_MS = 600_000;
const RETRY_MS = 5_000;
// The fetch deadline: generous for an IdP that answers (a first fetch on a loaded CI machine,
// undici loading included, has taken over 300 ms), short for one that hangs, so the tests of
// the deadline do not wait long for it.
const TIMEOUT_MS = 3_000;
const HANG_TIMEOUT_MS = 300;

type Mode = 'ok' | 'not-found' | 'error' | 'garbage' | 'not-a-jwks' | 'hang';

/** A stand-in IdP: metadata and a JWKS whose content and failure mode the test sets. */
class FakeIdp {
  mode: Mode = 'ok';
  jwks: { keys: JWK[] } = { keys: [] };
  private readonly hits = new Map<string, number>();
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeIdp> {
    let idp: FakeIdp | undefined;
    const server = createServer((req, res) => idp!.answer(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    idp = new FakeIdp(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return idp;
  }

  requests(path: string): number {
    return this.hits.get(path) ?? 0;
  }

  total(): number {
    return [...this.hits.values()].reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url!, this.url).pathname;
    this.hits.set(path, this.requests(path) + 1);
    if (path === '/.well-known/oauth-authorization-server') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: this.url, jwks_uri: `${this.url}/jwks` }));
      return;
    }
    if (path !== '/jwks' && path !== '/other-jwks') {
      res.writeHead(404).end();
      return;
    }
    switch (this.mode) {
      case 'ok':
        res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify(this.jwks));
        return;
      case 'not-found':
        res.writeHead(404).end('not here');
        return;
      case 'error':
        res.writeHead(500).end('boom');
        return;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'application/json' }).end('<html>{"keys": oops');
        return;
      case 'not-a-jwks':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"kid": "k1"}');
        return;
      case 'hang':
        return; // never answers
    }
  }
}

interface Signer {
  readonly kid: string;
  readonly jwk: JWK;
  sign(issuer: string): Promise<string>;
}

async function signer(kid: string, alg: 'ES256' | 'RS256' = 'ES256'): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, jwk, sign: (issuer) => accessToken(privateKey, alg, kid, issuer) };
}

function claims(issuer: string) {
  const now = Math.floor(Date.now() / 1000);
  return { iss: issuer, sub: 'user-42', aud: RESOURCE, iat: now, exp: now + 300, scope: 'todo:read' };
}

function accessToken(key: CryptoKey, alg: string, kid: string, issuer: string): Promise<string> {
  return new SignJWT(claims(issuer)).setProtectedHeader({ alg, kid, typ: 'at+jwt' }).sign(key);
}

/** A 1024-bit RSA key and a token it signed: jose will not make either, so node:crypto does. */
function weakRsa(kid: string, issuer: string): { jwk: JWK; token: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg: 'RS256', use: 'sig' };
  const encode = (value: object) => base64url.encode(JSON.stringify(value));
  const input = `${encode({ alg: 'RS256', kid, typ: 'at+jwt' })}.${encode(claims(issuer))}`;
  return { jwk, token: `${input}.${base64url.encode(sign('sha256', Buffer.from(input), privateKey))}` };
}

/** Records what was logged, by level. */
function recorder(): KeySetLogger & { readonly lines: { level: string; msg: string; obj: object }[]; at(level: string): string[] } {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const log = (level: string) => (obj: object, msg: string) => void lines.push({ level, msg, obj });
  return { lines, info: log('info'), warn: log('warn'), debug: log('debug'), at: (level) => lines.filter((l) => l.level === level).map((l) => l.msg) };
}

let idp: FakeIdp;
let k1: Signer;
let k2: Signer;
let attacker: Signer;
let clock: { t: number };
let logger: ReturnType<typeof recorder>;

beforeAll(async () => {
  [k1, k2, attacker] = await Promise.all([signer('k1'), signer('k2', 'RS256'), signer('k1')]);
});

async function setUp(keys: JWK[] = [k1.jwk], mode: Mode = 'ok', hangTimeoutMs = HANG_TIMEOUT_MS): Promise<IssuerKeySet> {
  idp = await FakeIdp.start();
  idp.jwks = { keys };
  idp.mode = mode;
  clock = { t: 1_000_000 };
  logger = recorder();
  return new IssuerKeySet(
    { fetchJwks: () => fetchJwks(new URL('/jwks', idp.url), idp.mode === 'hang' ? hangTimeoutMs : TIMEOUT_MS) },
    { cooldownMs: COOLDOWN_MS, maxAgeMs: MAX_AGE_MS, retryMs: RETRY_MS, now: () => clock.t, logger },
  );
}

afterEach(async () => {
  await idp?.close();
});

const verify = (keySet: IssuerKeySet, token: string) => verifyJwtAccessToken(token, { config: issuerConfig(idp.url), keys: keySet.getKey }, RESOURCE);
const codeOf = async (promise: Promise<unknown>) => (await rejectionOf(promise)).code;
const jwks = () => idp.requests('/jwks');
/** Lets an in-flight background refresh finish (the fake IdP answers at once). */
const settle = (expectedFetches: number) => vi.waitFor(() => expect(jwks()).toBe(expectedFetches), { timeout: 5_000 });

describe('IssuerKeySet: cache and rotation', () => {
  it('fetches once and then verifies from the cache', async () => {
    const keySet = await setUp();
    expect(await keySet.ready()).toBe(true);
    expect((await verify(keySet, await k1.sign(idp.url))).subject).toBe('user-42');
    expect((await verify(keySet, await k1.sign(idp.url))).subject).toBe('user-42');
    expect(jwks()).toBe(1);
  });

  it('picks up a rotated-in key with exactly one refetch', async () => {
    const keySet = await setUp();
    await keySet.ready();
    idp.jwks = { keys: [k1.jwk, k2.jwk] };
    clock.t += COOLDOWN_MS;
    expect((await verify(keySet, await k2.sign(idp.url))).subject).toBe('user-42');
    expect(jwks()).toBe(2);
    expect((await verify(keySet, await k2.sign(idp.url))).subject).toBe('user-42');
    expect((await verify(keySet, await k1.sign(idp.url))).subject).toBe('user-42');
    expect(jwks()).toBe(2);
  });

  it('refreshes a stale set in the background, so a key the IdP removed stops verifying', async () => {
    const keySet = await setUp([k1.jwk, k2.jwk]);
    await keySet.ready();
    idp.jwks = { keys: [k2.jwk] };
    clock.t += MAX_AGE_MS;
    // This request still uses the cached set; the refresh runs meanwhile.
    expect((await verify(keySet, await k1.sign(idp.url))).subject).toBe('user-42');
    await settle(2);
    await vi.waitFor(() => expect(logger.at('info')).toHaveLength(2), { timeout: 5_000 });
    expect(await codeOf(verify(keySet, await k1.sign(idp.url)))).toBe('invalid_token');
    expect((await verify(keySet, await k2.sign(idp.url))).subject).toBe('user-42');
  });

  it('does not make requests wait for a background refresh that hangs', async () => {
    // A long fetch deadline here: a request that waited for the refresh would take all of it,
    // while one that does not takes milliseconds. The test does not wait it out (the IdP's
    // connections are closed after each test).
    const refreshDeadlineMs = 3_000;
    const keySet = await setUp([k1.jwk], 'ok', refreshDeadlineMs);
    await keySet.ready();
    idp.mode = 'hang';
    clock.t += MAX_AGE_MS;
    const token = await k1.sign(idp.url);
    const started = performance.now();
    expect((await verify(keySet, token)).subject).toBe('user-42');
    expect(performance.now() - started).toBeLessThan(refreshDeadlineMs);
    await settle(2);
  });
});

describe('IssuerKeySet: unknown and forged kids', () => {
  it('answers a burst of 100 forged kids with one fetch, and then one per cooldown', async () => {
    const keySet = await setUp();
    await keySet.ready();
    clock.t += COOLDOWN_MS;
    const forged = await Promise.all(Array.from({ length: 100 }, (_, i) => signer(`forged-${i}`)));
    const burst = async () => Promise.all(forged.map(async (key) => codeOf(verify(keySet, await key.sign(idp.url)))));

    expect(new Set(await burst())).toEqual(new Set(['invalid_token']));
    expect(jwks()).toBe(2);
    expect(new Set(await burst())).toEqual(new Set(['invalid_token']));
    expect(jwks()).toBe(2);
    clock.t += COOLDOWN_MS - 1;
    await burst();
    expect(jwks()).toBe(2);
    clock.t += 1;
    await burst();
    expect(jwks()).toBe(3);
  });

  it('refuses a known kid with other key material as an invalid signature, without fetching', async () => {
    const keySet = await setUp();
    await keySet.ready();
    clock.t += COOLDOWN_MS;
    expect(await codeOf(verify(keySet, await attacker.sign(idp.url)))).toBe('invalid_token');
    expect(jwks()).toBe(1);
  });

  it('answers 100 concurrent requests with one fetch while the JWKS fetch fails, then waits out the retry delay', async () => {
    const keySet = await setUp([k1.jwk], 'error');
    const token = await k1.sign(idp.url);
    const burst = () => Promise.all(Array.from({ length: 100 }, () => rejectionOf(verify(keySet, token))));

    const refusals = await burst();
    expect(new Set(refusals.map((r) => r.code))).toEqual(new Set(['issuer_unavailable']));
    expect(refusals[0]!.shape.status).toBe(503);
    expect(refusals[0]!.details.retryAfterSeconds).toBe(RETRY_MS / 1000);
    expect(jwks()).toBe(1);
    clock.t += RETRY_MS - 1000;
    const later = await burst();
    expect(later[0]!.details.retryAfterSeconds).toBe(1);
    expect(jwks()).toBe(1);
    expect(logger.at('warn')).toEqual(['issuer keys cannot be fetched']);
  });
});

describe('IssuerKeySet: the IdP is down after keys were fetched', () => {
  it.each([
    ['answers 500', async () => void (idp.mode = 'error')],
    ['is gone', async () => idp.close()],
  ])('keeps verifying with the cached keys, even past max-age, while the IdP %s', async (_, takeDown) => {
    const keySet = await setUp();
    await keySet.ready();
    await takeDown();
    for (let i = 0; i < 3; i++) {
      clock.t += MAX_AGE_MS;
      expect((await verify(keySet, await k1.sign(idp.url))).subject).toBe('user-42');
      await vi.waitFor(() => expect(logger.lines.length).toBe(2 + i), { timeout: 5_000 });
    }
    expect(await keySet.ready()).toBe(true);
    // One warning for the whole failure streak; the repeats are debug.
    expect(logger.at('warn')).toEqual(['issuer keys cannot be fetched']);
    expect(logger.at('debug')).toHaveLength(2);
  });

  it('refuses an unknown kid with 401 (not 503) while the IdP is down and cached keys exist', async () => {
    const keySet = await setUp();
    await keySet.ready();
    idp.mode = 'error';
    clock.t += COOLDOWN_MS;
    expect(await codeOf(verify(keySet, await k2.sign(idp.url)))).toBe('invalid_token');
    expect(jwks()).toBe(2);
  });

  it('keeps the last-known-good keys when a fetch brings no usable key', async () => {
    const keySet = await setUp();
    await keySet.ready();
    idp.jwks = { keys: [{ ...k2.jwk, use: 'enc' }] };
    clock.t += MAX_AGE_MS;
    await keySet.ready();
    await settle(2);
    await vi.waitFor(() => expect(logger.at('warn')).toEqual(['issuer keys cannot be fetched']), { timeout: 5_000 });
    expect((await verify(keySet, await k1.sign(idp.url))).subject).toBe('user-42');
  });

  it('logs the recovery after a failure streak', async () => {
    const keySet = await setUp();
    await keySet.ready();
    idp.mode = 'error';
    clock.t += MAX_AGE_MS;
    await keySet.ready();
    await settle(2);
    idp.mode = 'ok';
    clock.t += RETRY_MS;
    await keySet.ready();
    await vi.waitFor(() => expect(logger.at('info')).toEqual(['issuer keys fetched', 'issuer keys fetched again']), { timeout: 5_000 });
  });
});

describe('IssuerKeySet: no keys ever fetched', () => {
  it.each<[string, Mode | 'closed']>([
    ['404', 'not-found'],
    ['500', 'error'],
    ['garbage', 'garbage'],
    ['JSON that is not a JWK Set', 'not-a-jwks'],
    ['no answer within the timeout', 'hang'],
    ['a closed port', 'closed'],
  ])('refuses with issuer_unavailable (503) on %s, and recovers once the IdP answers', async (_, mode) => {
    const keySet = await setUp([k1.jwk], mode === 'closed' ? 'ok' : mode);
    const token = await k1.sign(idp.url);
    if (mode === 'closed') await idp.close();

    expect(await keySet.ready()).toBe(false);
    expect(await codeOf(verify(keySet, token))).toBe('issuer_unavailable');
    expect(logger.at('warn')).toEqual(['issuer keys cannot be fetched']);
    if (mode === 'closed') return;
    idp.mode = 'ok';
    clock.t += RETRY_MS;
    expect((await verify(keySet, token)).subject).toBe('user-42');
  });
});

describe('IssuerKeySet: unusable keys', () => {
  it('never uses an RSA key under 2048 bits', async () => {
    const keySet = await setUp();
    const weak = weakRsa('weak', idp.url);
    idp.jwks = { keys: [weak.jwk, k1.jwk] };
    await keySet.ready();
    clock.t += COOLDOWN_MS;
    await expect(keySet.getKey({ alg: 'RS256', kid: 'weak' }, undefined as never)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    expect(await codeOf(verify(keySet, weak.token))).toBe('invalid_token');
    expect(logger.lines.filter((l) => l.level === 'warn').map((l) => l.obj)).toContainEqual({ kid: 'weak', reason: 'RSA modulus under 2048 bits' });
    expect((await verify(keySet, await k1.sign(idp.url))).subject).toBe('user-42');
  });

  it('treats a JWKS whose only key is a weak RSA key as no keys at all', async () => {
    const keySet = await setUp();
    const weak = weakRsa('weak', idp.url);
    idp.jwks = { keys: [weak.jwk] };
    expect(await keySet.ready()).toBe(false);
    expect(await codeOf(verify(keySet, weak.token))).toBe('issuer_unavailable');
  });

  it('refuses keys that carry private key material, and warns', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const leaked = { ...(await exportJWK(privateKey)), kid: 'leaked', alg: 'ES256' };
    const keySet = await setUp([leaked, k2.jwk]);
    await keySet.ready();
    clock.t += COOLDOWN_MS;
    await expect(keySet.getKey({ alg: 'ES256', kid: 'leaked' }, undefined as never)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    expect(logger.lines).toContainEqual({ level: 'warn', msg: 'issuer JWKS key refused', obj: { kid: 'leaked', reason: 'contains private key material' } });

    const alone = new IssuerKeySet({ inline: { keys: [leaked] } }, { cooldownMs: COOLDOWN_MS, maxAgeMs: MAX_AGE_MS, logger });
    expect(await alone.ready()).toBe(false);
    expect(await codeOf(verifyJwtAccessToken(await k1.sign(idp.url), { config: issuerConfig(idp.url), keys: alone.getKey }, RESOURCE))).toBe('issuer_unavailable');
  });

  it('skips encryption keys, keys not for verify and symmetric keys', async () => {
    const keySet = await setUp([
      { ...k1.jwk, kid: 'enc', use: 'enc' },
      { ...k1.jwk, kid: 'ops', use: undefined, key_ops: ['encrypt'] } as JWK,
      { kty: 'oct', kid: 'hmac', k: base64url.encode('a shared secret that is now public') },
      { ...k1.jwk, use: undefined, key_ops: ['verify'] } as JWK,
    ]);
    await keySet.ready();
    clock.t += COOLDOWN_MS;
    for (const kid of ['enc', 'ops']) {
      await expect(keySet.getKey({ alg: 'ES256', kid }, undefined as never)).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    }
    expect(logger.lines.map((l) => (l.obj as { kid?: string }).kid)).toEqual(expect.arrayContaining(['enc', 'ops', 'hmac']));
    expect((await verify(keySet, await k1.sign(idp.url))).subject).toBe('user-42');
  });
});

describe('IssuerDirectory: where keys come from', () => {
  const silent = createLogger('silent');

  it('uses inline keys without any request', async () => {
    idp = await FakeIdp.start();
    const directory = new IssuerDirectory([issuerConfig(idp.url, { jwks: { keys: [k1.jwk] } })], TIMEOUT_MS, silent);
    expect(await directory.warmUp()).toBe(true);
    const issuer = directory.trusted(idp.url, 'any');
    expect((await verifyJwtAccessToken(await k1.sign(idp.url), issuer, RESOURCE)).subject).toBe('user-42');
    expect(await codeOf(verifyJwtAccessToken(await k2.sign(idp.url), issuer, RESOURCE))).toBe('invalid_token');
    expect(idp.total()).toBe(0);
  });

  it('fetches a configured jwksUri directly, never the metadata', async () => {
    idp = await FakeIdp.start();
    idp.jwks = { keys: [k1.jwk] };
    const directory = new IssuerDirectory([issuerConfig(idp.url, { jwksUri: `${idp.url}/other-jwks` })], TIMEOUT_MS, silent);
    const issuer = directory.trusted(idp.url, 'any');
    expect((await verifyJwtAccessToken(await k1.sign(idp.url), issuer, RESOURCE)).subject).toBe('user-42');
    expect(idp.requests('/other-jwks')).toBe(1);
    expect(idp.total()).toBe(1);
  });

  it('discovers the jwks_uri, then serves from the cache', async () => {
    idp = await FakeIdp.start();
    idp.jwks = { keys: [k1.jwk] };
    const directory = new IssuerDirectory([issuerConfig(idp.url)], TIMEOUT_MS, silent);
    expect(await directory.readiness()).toEqual({ [idp.url]: true });
    const issuer = directory.trusted(idp.url, 'any');
    expect((await verifyJwtAccessToken(await k1.sign(idp.url), issuer, RESOURCE)).subject).toBe('user-42');
    expect(idp.requests('/.well-known/oauth-authorization-server')).toBe(1);
    expect(jwks()).toBe(1);
  });

  it('reports an issuer whose JWKS fails as not ready, and its tokens as issuer_unavailable', async () => {
    idp = await FakeIdp.start();
    idp.mode = 'error';
    const directory = new IssuerDirectory([issuerConfig(idp.url)], TIMEOUT_MS, silent);
    expect(await directory.warmUp()).toBe(false);
    const issuer = directory.trusted(idp.url, 'any');
    expect(await codeOf(verifyJwtAccessToken(await k1.sign(idp.url), issuer, RESOURCE))).toBe('issuer_unavailable');
    expect(jwks()).toBe(1);
  });

  it('fetches nothing for a token whose iss is not configured', async () => {
    idp = await FakeIdp.start();
    const directory = new IssuerDirectory([issuerConfig(idp.url)], TIMEOUT_MS, silent);
    expect(() => directory.trusted('https://evil.example.test', 'any')).toThrow('not trusted');
    expect(() => new IssuerDirectory([issuerConfig(idp.url, { routes: ['a'] })], TIMEOUT_MS, silent).trusted(idp.url, 'b')).toThrow('not trusted');
    expect(idp.total()).toBe(0);
  });
});
