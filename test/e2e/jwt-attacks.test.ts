import { generateKeyPairSync, randomUUID, sign as rsaSign, verify as rsaVerify, type KeyObject } from 'node:crypto';
import {
  base64url,
  CompactEncrypt,
  decodeProtectedHeader,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importJWK,
  importPKCS8,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTHeaderParameters,
} from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { discover, obtainAccessToken, type DevIdp } from '../../dev/idp.js';
import { ATTACKER_CERT_DER_BASE64, ATTACKER_CERT_KEY_PKCS8, startAttackStack, type AttackStack } from '../support/attack-stack.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';

/**
 * Forged, tampered and misused JWTs against the running gateway, in raw HTTP. Every case sends
 * its token as `Authorization: Bearer` on a POST tools/call, a GET and a DELETE (all carrying a
 * real session id of the victim), and asserts the refusal (401 `invalid_token` challenge, or the
 * documented 503 when the issuer's keys cannot be had) and that the upstream's request log
 * stayed empty: nothing reached it.
 *
 * The negatives are measured against controls: a real token from the IdP, and a token this test
 * mints with the IdP's own signing key and the same claim template the forgeries start from,
 * pass. So each forged token differs from an accepted one in the one property under attack.
 *
 * Issuers (see test/support/attack-stack.ts):
 * - `idp`: real RS256 dev IdP, keys by discovery, default clock tolerance (30 s);
 * - `ecIdp`: real ES256 dev IdP, also trusted;
 * - `strict`: `idp`'s keys (its jwks_uri) under another issuer name, `clockTolerance: 0s`;
 * - `keyed`, `weakOnly`, one per JWKS failure mode, `burst`: `jwksUri` on the test's key
 *   server, which counts fetches.
 */

type Method = 'POST' | 'GET' | 'DELETE';
const METHODS: readonly Method[] = ['POST', 'GET', 'DELETE'];
const CALL_ID = 7;
/** README "Keys": with no keys, fetches are retried every 5 seconds. */
const KEY_RETRY_MS = 5_000;
const DAY = 24 * 60 * 60;

/** JWKS failure modes, each behind its own issuer so that none has ever had keys. */
const UNAVAILABLE_MODES = ['404', '500', 'garbage', 'not-a-jwks', 'redirect', 'timeout'] as const;
type UnavailableMode = (typeof UNAVAILABLE_MODES)[number];

const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const b64json = (value: unknown) => base64url.encode(JSON.stringify(value));

/** An RS256 key pair with a kid, as an attacker (or a test key server) would make one. */
interface TestKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

async function rsaTestKey(kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

describe('JWT attacks', () => {
  let stack: AttackStack;
  /** Not known to any issuer. */
  let attacker: TestKey;
  /** `keyed`'s good key (2048 bits), served by the key server. */
  let keyedKey: TestKey;
  /** 1024 bits: jose refuses to make or use one, so node:crypto makes it and signs with it. */
  let weak: { kid: string; privateKey: KeyObject; publicKey: KeyObject; publicJwk: JWK };
  /** A real access token from `idp` (alice, todo:read, this resource). */
  let realToken: string;
  /** A real session of alice's; every forged request names it. */
  let sessionId: string;
  const issuerOf: Record<'strict' | 'keyed' | 'weakOnly' | 'burst' | UnavailableMode, string> = {} as never;
  const jwksPath = (name: string) => `/${name}/jwks`;

  beforeAll(async () => {
    attacker = await rsaTestKey(`attacker-${randomUUID()}`);
    keyedKey = await rsaTestKey('keyed-2048');
    const weakPair = generateKeyPairSync('rsa', { modulusLength: 1024 });
    weak = {
      kid: 'weak-1024',
      ...weakPair,
      publicJwk: { ...(weakPair.publicKey.export({ format: 'jwk' }) as JWK), kid: 'weak-1024', alg: 'RS256', use: 'sig' },
    };

    stack = await startAttackStack({
      extraIssuers: async ({ idp, keyServer }) => {
        const at = (name: string) => `${keyServer.url}/issuer/${name}`;
        issuerOf.strict = `${idp.issuer}/strict`;
        for (const name of ['keyed', 'weakOnly', 'burst', ...UNAVAILABLE_MODES] as const) issuerOf[name] = at(name);

        keyServer.json(jwksPath('keyed'), { keys: [keyedKey.publicJwk, weak.publicJwk] });
        keyServer.json(jwksPath('weakOnly'), { keys: [weak.publicJwk] });
        keyServer.on(jwksPath('404'), (_req, res) => res.writeHead(404).end('no such key set'));
        keyServer.on(jwksPath('500'), (_req, res) => res.writeHead(500).end('internal error'));
        keyServer.on(jwksPath('garbage'), (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('\u0000{"keys": [garbage'));
        keyServer.json(jwksPath('not-a-jwks'), { keys: 'none', kty: 'RSA' });
        // A redirect to a JWKS holding the attacker's key: followed, the attacker's token would pass.
        keyServer.json('/redirect-target/jwks', { keys: [attacker.publicJwk] });
        keyServer.on(jwksPath('redirect'), (_req, res) => res.writeHead(302, { location: `${keyServer.url}/redirect-target/jwks` }).end());
        keyServer.on(jwksPath('timeout'), () => undefined); // never answers; the gateway gives up after 1 s
        keyServer.on(jwksPath('burst'), (_req, res) => void setTimeout(() => res.writeHead(500).end('down'), 200));

        return [
          // The strict issuer shares idp's keys, so idp's signing key makes its tokens.
          { issuer: issuerOf.strict, jwksUri: (await discover(idp)).jwks_uri, clockTolerance: '0s' },
          ...(['keyed', 'weakOnly', 'burst', ...UNAVAILABLE_MODES] as const).map((name) => ({
            issuer: issuerOf[name],
            jwksUri: `${keyServer.url}${jwksPath(name)}`,
          })),
        ];
      },
    });
    realToken = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read' })).accessToken;
    sessionId = await openSession(stack.mcpUrl, realToken);
  });
  afterAll(async () => stack?.close());
  beforeEach(() => stack.upstream.clearLog());

  // -------------------------------------------------------------------------------------------
  // Token makers. Claims and header default to a token the gateway accepts (see the controls);
  // each case changes one thing. `undefined` removes a claim or header parameter.
  // -------------------------------------------------------------------------------------------

  function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const t = now();
    const all: Record<string, unknown> = {
      iss: stack.idp.issuer,
      sub: 'alice',
      aud: stack.mcpUrl,
      scope: 'todo:read',
      client_id: 'jwt-attacks',
      iat: t,
      exp: t + 600,
      jti: randomUUID(),
      ...overrides,
    };
    return Object.fromEntries(Object.entries(all).filter(([, value]) => value !== undefined));
  }

  interface MintOptions {
    /** Default: the signing key of `idp` (or of `signer`). */
    readonly key?: CryptoKey | Uint8Array;
    /** Whose key signs, for the default key, alg and kid. Default `stack.idp`. */
    readonly signer?: DevIdp;
    readonly header?: Record<string, unknown>;
    readonly claims?: Record<string, unknown>;
    /** Header parameters jose should let through `crit` when signing. */
    readonly crit?: Record<string, boolean>;
  }

  function mint(options: MintOptions = {}): Promise<string> {
    const signing = (options.signer ?? stack.idp).signingKey;
    const header = Object.fromEntries(
      Object.entries({ alg: signing.alg, typ: 'at+jwt', kid: signing.kid, ...options.header }).filter(([, value]) => value !== undefined),
    ) as JWTHeaderParameters;
    return new SignJWT(claims(options.claims)).setProtectedHeader(header).sign(options.key ?? signing.privateKey, options.crit ? { crit: options.crit } : undefined);
  }

  const attackerToken = (header: Record<string, unknown> = {}, overrides: Record<string, unknown> = {}) =>
    mint({ key: attacker.privateKey, header: { kid: attacker.kid, ...header }, claims: overrides });

  /** A compact JWS with an empty signature: what `alg: none` tokens look like. */
  const unsigned = (header: Record<string, unknown>, overrides: Record<string, unknown> = {}) => `${b64json(header)}.${b64json(claims(overrides))}.`;

  /** RS256 with the 1024-bit key, by node:crypto (RSASSA-PKCS1-v1_5, SHA-256): jose refuses such keys. */
  function signWithWeakKey(overrides: Record<string, unknown>): string {
    const input = `${b64json({ alg: 'RS256', typ: 'at+jwt', kid: weak.kid })}.${b64json(claims(overrides))}`;
    const signature = rsaSign('sha256', Buffer.from(input), weak.privateKey);
    // The signature is right: the refusal below is about the key size, nothing else.
    expect(rsaVerify('sha256', Buffer.from(input), weak.publicKey, signature)).toBe(true);
    return `${input}.${base64url.encode(signature)}`;
  }

  const withSignature = (token: string, signature: string) => `${token.split('.').slice(0, 2).join('.')}.${signature}`;
  const signatureOf = (token: string) => token.split('.')[2]!;

  // -------------------------------------------------------------------------------------------
  // Requests and expectations
  // -------------------------------------------------------------------------------------------

  const send = (token: string, method: Method = 'POST') =>
    mcpRequest(stack.mcpUrl, toolCall(CALL_ID, 'list_todos'), { token, method, sessionId });

  /** 401 with an `invalid_token` Bearer challenge on every method, and nothing upstream. */
  async function expectInvalidToken(token: string, methods: readonly Method[] = METHODS): Promise<void> {
    for (const method of methods) {
      stack.upstream.clearLog();
      const response = await send(token, method);
      const body = (await response.json()) as { error?: { code?: number } };
      expect(response.status, `${method}: status`).toBe(401);
      const challenge = response.headers.get('www-authenticate') ?? '';
      expect(challenge, `${method}: challenge`).toMatch(/^Bearer error="invalid_token", error_description="[^"]+"/);
      expect(challenge, `${method}: challenge`).toContain(`resource_metadata="${stack.gateway.url}/.well-known/oauth-protected-resource/mcp"`);
      expect(body.error?.code, `${method}: JSON-RPC error`).toBe(-32001);
      expect(stack.upstream.requests, `${method}: reached the upstream`).toEqual([]);
    }
  }

  /** 503 issuer_unavailable with Retry-After (no challenge: not the client's fault), and nothing upstream. */
  async function expectIssuerUnavailable(token: string, methods: readonly Method[] = METHODS): Promise<void> {
    for (const method of methods) {
      stack.upstream.clearLog();
      const response = await send(token, method);
      const body = (await response.json()) as { error?: { code?: number } };
      expect(response.status, `${method}: status`).toBe(503);
      expect(response.headers.get('retry-after'), `${method}: Retry-After`).toMatch(/^[1-9][0-9]*$/);
      expect(response.headers.get('www-authenticate') ?? '', `${method}: challenge`).not.toContain('invalid_token');
      expect(body.error?.code, `${method}: JSON-RPC error`).toBe(-32000);
      expect(stack.upstream.requests, `${method}: reached the upstream`).toEqual([]);
    }
  }

  /** The token opens a session and calls a tool: 200, and the call reached the upstream. */
  async function expectAccepted(token: string): Promise<void> {
    const session = await openSession(stack.mcpUrl, token);
    stack.upstream.clearLog();
    const response = await mcpRequest(stack.mcpUrl, toolCall(CALL_ID, 'list_todos'), { token, sessionId: session });
    const body = (await response.json()) as { result?: unknown };
    expect(response.status).toBe(200);
    expect(body.result).toMatchObject({ content: [{ type: 'text', text: expect.any(String) }] });
    expect(stack.upstream.requests.map((request) => request.toolNames)).toEqual([['list_todos']]);
  }

  // -------------------------------------------------------------------------------------------

  describe('controls: what the refusals are measured against', () => {
    it('a real access token from the IdP passes', async () => {
      await expectAccepted(realToken);
    });

    it("a token minted here with the IdP's signing key and the template claims passes", async () => {
      const token = await mint();
      expect(decodeProtectedHeader(token)).toEqual(decodeProtectedHeader(realToken)); // same alg, typ, kid as the IdP's own
      await expectAccepted(token);
    });

    it('a real ES256 token from the second trusted IdP passes', async () => {
      await expectAccepted((await obtainAccessToken(stack.ecIdp, { resource: stack.mcpUrl, scope: 'todo:read' })).accessToken);
    });

    it("a token of the strict (0 s tolerance) issuer, signed with the IdP's key, passes", async () => {
      await expectAccepted(await mint({ claims: { iss: issuerOf.strict } }));
    });
  });

  describe('signature & algorithm', () => {
    it.each(['none', 'None', 'NONE', 'nOnE'])('alg: %s (unsigned) is refused', async (alg) => {
      await expectInvalidToken(unsigned({ alg, typ: 'at+jwt', kid: stack.idp.signingKey.kid }));
    });

    it('alg: none carrying the signature of a real token is refused', async () => {
      const forged = unsigned({ alg: 'none', typ: 'at+jwt', kid: stack.idp.signingKey.kid });
      await expectInvalidToken(`${forged}${signatureOf(realToken)}`);
    });

    it('a header without alg is refused', async () => {
      await expectInvalidToken(unsigned({ typ: 'at+jwt', kid: stack.idp.signingKey.kid }));
    });

    // The classic key confusion: a verifier that takes `alg` from the token would HMAC-verify
    // with the bytes of the RSA public key it holds. Each form a verifier might hold is tried.
    it.each([
      ['the SPKI PEM', async (jwk: JWK) => exportSPKI((await importJWK(jwk, 'RS256', { extractable: true })) as CryptoKey)],
      ['the SPKI PEM with a final newline', async (jwk: JWK) => `${await exportSPKI((await importJWK(jwk, 'RS256', { extractable: true })) as CryptoKey)}\n`],
      ['the JWK as JSON', async (jwk: JWK) => JSON.stringify(jwk)],
      ['the raw modulus', async (jwk: JWK) => base64url.decode(jwk.n!)],
    ] as const)('HS256 with the HMAC key = %s of the IdP public key is refused', async (_name, secretOf) => {
      const secret = await secretOf(stack.idp.signingKey.publicJwk);
      const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
      await expectInvalidToken(await mint({ key, header: { alg: 'HS256' } }));
    });

    it("a signature by an attacker key under the IdP's kid is refused", async () => {
      await expectInvalidToken(await mint({ key: attacker.privateKey }));
    });

    // CVE-2022-21449 (Java "psychic signatures"): r = s = 0 verified against any ES256 key.
    it('an all-zero ES256 signature (CVE-2022-21449) is refused', async () => {
      const real = (await obtainAccessToken(stack.ecIdp, { resource: stack.mcpUrl, scope: 'todo:read' })).accessToken;
      expect(decodeProtectedHeader(real).alg).toBe('ES256');
      await expectInvalidToken(withSignature(real, base64url.encode(new Uint8Array(64))));
    });

    // Both IdPs are trusted; keys are per issuer, so one's key cannot vouch for the other's iss.
    it.each([
      ["the ES256 IdP's key and kid, iss = the RS256 IdP", 'ec', 'signer'],
      ["the ES256 IdP's key, the RS256 IdP's kid, iss = the RS256 IdP", 'ec', 'victim'],
      ["the ES256 IdP's key, no kid, iss = the RS256 IdP", 'ec', 'none'],
      ["the RS256 IdP's key and kid, iss = the ES256 IdP", 'rsa', 'signer'],
    ] as const)('a token signed with another trusted issuer key is refused: %s', async (_name, signerName, kidFrom) => {
      const signer = signerName === 'ec' ? stack.ecIdp : stack.idp;
      const victim = signerName === 'ec' ? stack.idp : stack.ecIdp;
      const kid = { signer: signer.signingKey.kid, victim: victim.signingKey.kid, none: undefined }[kidFrom];
      await expectInvalidToken(await mint({ signer, header: { kid }, claims: { iss: victim.issuer } }));
    });
  });

  describe('header tricks', () => {
    it('an unknown kid is refused', async () => {
      await expectInvalidToken(await attackerToken({ kid: `unknown-${randomUUID()}` }));
    });

    it.each(['../../dev/null', "' OR 1=1 --", '', '/proc/self/environ\u0000'])('kid %j is refused', async (kid) => {
      await expectInvalidToken(await attackerToken({ kid }));
    });

    it("an embedded jwk header with the attacker's public key is not trusted", async () => {
      await expectInvalidToken(await attackerToken({ jwk: attacker.publicJwk }));
      // …nor when it borrows the IdP's kid.
      await expectInvalidToken(await attackerToken({ jwk: { ...attacker.publicJwk, kid: stack.idp.signingKey.kid }, kid: stack.idp.signingKey.kid }));
    });

    it("a jku header pointing at the attacker's JWKS is not trusted, and never fetched", async () => {
      const path = '/attacker/jwks.json';
      stack.keyServer.json(path, { keys: [attacker.publicJwk] });
      await expectInvalidToken(await attackerToken({ jku: `${stack.keyServer.url}${path}` }));
      expect(stack.keyServer.hits(path)).toEqual([]);
    });

    it("an x5u header pointing at the attacker's certificate is not trusted, and never fetched", async () => {
      const path = '/attacker/cert.pem';
      stack.keyServer.on(path, (_req, res) => res.writeHead(200, { 'content-type': 'application/pem-certificate-chain' }).end(ATTACKER_CERT_DER_BASE64));
      await expectInvalidToken(await attackerToken({ x5u: `${stack.keyServer.url}${path}` }));
      expect(stack.keyServer.hits(path)).toEqual([]);
    });

    it("an x5c header with the attacker's self-signed certificate is not trusted", async () => {
      const certKey = await importPKCS8(ATTACKER_CERT_KEY_PKCS8, 'RS256');
      // Without a kid, the IdP's only RSA key is the candidate: the certificate must not be.
      await expectInvalidToken(await mint({ key: certKey, header: { kid: undefined, x5c: [ATTACKER_CERT_DER_BASE64] } }));
      await expectInvalidToken(await mint({ key: certKey, header: { x5c: [ATTACKER_CERT_DER_BASE64] } }));
    });

    it.each([['urn:attack:unrecognised'], ['kid']])('crit naming %s (not understood) is refused, even with the IdP signature', async (name) => {
      const header = name === 'kid' ? { crit: ['kid'] } : { crit: [name], [name]: true };
      await expectInvalidToken(await mint({ header, crit: { [name]: true } }));
    });

    it.each([['JWT'], ['application/jwt'], [undefined]])('typ %s (not at+jwt) is refused, even with the IdP signature', async (typ) => {
      await expectInvalidToken(await mint({ header: { typ } }));
    });
  });

  describe('claims', () => {
    it('a token without exp is refused', async () => {
      await expectInvalidToken(await mint({ claims: { exp: undefined } }));
    });

    // Clock tolerance: the main issuer keeps the default (30 s), so "expired" there means
    // beyond it: an hour ago, and 31 s ago (just past the tolerance). The boundary itself
    // (exp == now, nbf one second ahead) is tested on the strict issuer, configured with
    // clockTolerance: 0s, where jose refuses exp <= now and nbf > now.
    it.each([
      ['an hour ago (30 s tolerance)', 'main', -3600],
      ['31 s ago, just past the 30 s tolerance', 'main', -31],
      ['now, with 0 s tolerance', 'strict', 0],
    ] as const)('a token that expired %s is refused', async (_name, issuer, offset) => {
      const iss = issuer === 'strict' ? issuerOf.strict : stack.idp.issuer;
      await expectInvalidToken(await mint({ claims: { iss, iat: now() - 3700, exp: now() + offset } }));
    });

    it.each([
      ['2 minutes ahead (30 s tolerance)', 'main', 120],
      ['3 s ahead, with 0 s tolerance', 'strict', 3],
    ] as const)('a token whose nbf is %s is refused', async (_name, issuer, offset) => {
      const iss = issuer === 'strict' ? issuerOf.strict : stack.idp.issuer;
      await expectInvalidToken(await mint({ claims: { iss, nbf: now() + offset } }));
    });

    // jose checks `iat` only against a maximum age; the gateway refuses a token "issued" beyond
    // the clock tolerance in the future (a broken IdP clock, or a key used out of band).
    describe('iat far in the future', () => {
      let token = '';
      beforeAll(async () => {
        token = await mint({ claims: { iat: now() + 365 * DAY } });
      });

      it('a token whose iat is a year ahead is refused', async () => {
        await expectInvalidToken(token);
      });
    });

    it.each([
      ['an unconfigured issuer', (): string | undefined => 'https://evil.example'],
      ["the issuer with a trailing slash", (): string | undefined => `${stack.idp.issuer}/`],
      ['the issuer in upper case', (): string | undefined => stack.idp.issuer.toUpperCase()],
      ['no iss at all', (): string | undefined => undefined],
    ] as const)('iss = %s is refused, even with the IdP signature', async (_name, iss) => {
      await expectInvalidToken(await mint({ claims: { iss: iss() } }));
    });

    it('an unconfigured iss makes the gateway fetch nothing from it', async () => {
      const before = stack.keyServer.hits().length;
      await expectInvalidToken(await attackerToken({}, { iss: `${stack.keyServer.url}/issuer/unconfigured` }));
      expect(stack.keyServer.hits().slice(before)).toEqual([]);
    });

    it.each([
      ['missing', (): string | string[] | undefined => undefined],
      ['another resource', (): string | string[] | undefined => 'http://127.0.0.1:1/other'],
      ['another path on this gateway', (): string | string[] | undefined => `${stack.gateway.url}/other`],
      ['the gateway origin only', (): string | string[] | undefined => stack.gateway.url],
      ['the IdP', (): string | string[] | undefined => stack.idp.issuer],
      ['a list without this resource', (): string | string[] | undefined => ['http://127.0.0.1:1/other', `${stack.mcpUrl}/`]],
    ] as const)('aud %s is refused, even with the IdP signature', async (_name, aud) => {
      await expectInvalidToken(await mint({ claims: { aud: aud() } }));
    });

    it('a token without a subject is refused', async () => {
      await expectInvalidToken(await mint({ claims: { sub: undefined } }));
    });

    it('a real ID token from the IdP is refused as an access token', async () => {
      const { tokenResponse, clientId } = await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'openid todo:read' });
      const idToken = tokenResponse.id_token;
      expect(typeof idToken).toBe('string');
      // Genuine and valid: signed by the IdP, for the client, about alice.
      const { payload } = await jwtVerify(idToken as string, await importJWK(stack.idp.signingKey.publicJwk, 'RS256'), {
        issuer: stack.idp.issuer,
        audience: clientId,
      });
      expect(payload.sub).toBe('alice');
      await expectInvalidToken(idToken as string);
    });
  });

  describe('token shape', () => {
    it('a compact JWE (5 segments) wrapping a real access token is refused', async () => {
      const { publicKey } = await generateKeyPair('RSA-OAEP-256');
      const jwe = await new CompactEncrypt(new TextEncoder().encode(realToken))
        .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', cty: 'JWT', typ: 'at+jwt' })
        .encrypt(publicKey);
      expect(jwe.split('.')).toHaveLength(5);
      await expectInvalidToken(jwe);
    });

    it.each([
      ['the signature cut short', (t: string) => t.slice(0, -8)],
      ['an empty signature', (t: string) => withSignature(t, '')],
      ['no signature segment', (t: string) => t.split('.').slice(0, 2).join('.')],
      ['the header alone', (t: string) => t.split('.')[0]!],
      ['a fourth segment', (t: string) => `${t}.${signatureOf(t)}`],
      ['the payload cut short', (t: string) => { const [h, p, s] = t.split('.'); return `${h}.${p!.slice(0, -4)}.${s}`; }],
    ] as const)('a real token with %s is refused', async (_name, cut) => {
      await expectInvalidToken(cut(realToken));
    });

    it('a 12 KiB token (under the header limit) is refused quickly', async () => {
      const token = await attackerToken({}, { padding: 'x'.repeat(9_000) });
      expect(token.length).toBeGreaterThan(12_000);
      const started = performance.now();
      await expectInvalidToken(token);
      expect(performance.now() - started).toBeLessThan(2_000);
    });

    // A 1 MiB Authorization header never reaches the gateway's code: Node's HTTP parser refuses
    // headers over its limit (16 KiB by default) with 431 and closes the connection, which the
    // client may see as a reset before it reads the 431. Either is a refusal; what matters is
    // that it is quick, nothing reaches the upstream, and the gateway keeps serving.
    it('a 1 MiB token is refused quickly and the gateway keeps serving', async () => {
      const token = `${b64json({ alg: 'RS256', typ: 'at+jwt', kid: stack.idp.signingKey.kid })}.${'A'.repeat(1024 * 1024)}.${signatureOf(realToken)}`;
      const started = performance.now();
      const outcome = await send(token).then(
        async (response) => {
          await response.arrayBuffer();
          return response.status;
        },
        () => 'connection closed',
      );
      expect(performance.now() - started).toBeLessThan(2_000);
      expect([431, 'connection closed']).toContain(outcome);
      expect(stack.upstream.requests).toEqual([]);
      expect((await fetch(`${stack.gateway.url}/healthz`)).status).toBe(200);
      await expectAccepted(await mint());
    });

    // Base64url without padding, in the URL-safe alphabet, with unused bits zero (RFC 7515 §2,
    // RFC 4648 §5) is the only encoding of a JWS. Only the signature segment is interesting:
    // the header and payload segments are the signing input as sent, so re-encoding them
    // breaks the signature anyway. Each variant decodes, leniently, to the bytes of the
    // signature of a real, valid token.
    describe('non-canonical base64url in the signature', () => {
      const variants = { standardAlphabet: '', padded: '', unusedBits: '' };

      beforeAll(async () => {
        let token = realToken;
        while (!/[-_]/.test(signatureOf(token))) token = await mint(); // (a 342-char signature without - or _ is rare)
        variants.standardAlphabet = withSignature(token, signatureOf(token).replaceAll('-', '+').replaceAll('_', '/'));
        const signature = signatureOf(realToken);
        // RS256: 256 bytes = 342 characters; the last carries 2 bits of the signature and 4 unused ones.
        expect(signature.length % 4).toBe(2);
        variants.padded = withSignature(realToken, `${signature}==`);
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        variants.unusedBits = withSignature(realToken, `${signature.slice(0, -1)}${alphabet[alphabet.indexOf(signature.at(-1)!) | 0b1111]}`);
      });

      it('the variants are other strings for the same signature bytes', () => {
        const bytes = (token: string) => Buffer.from(signatureOf(token), 'base64'); // Node's decoder is lenient on all three
        for (const variant of Object.values(variants)) expect(variant).not.toBe(realToken);
        expect(bytes(variants.padded)).toEqual(bytes(realToken));
        expect(bytes(variants.unusedBits)).toEqual(bytes(realToken));
        expect(base64url.encode(bytes(variants.unusedBits))).toBe(signatureOf(realToken)); // canonical form = the real one
      });

      it('the standard alphabet (+ and /) is refused', async () => {
        await expectInvalidToken(variants.standardAlphabet);
      });

      // jose 6 on Node 20 decodes base64url with atob, which accepts `=` padding and ignores
      // non-zero unused bits; the gateway insists on the canonical spelling, so a holder of a
      // valid token cannot mint look-alikes that the token cache or logs would count as new.
      it('= padding is refused', async () => {
        await expectInvalidToken(variants.padded);
      });

      it('non-zero unused bits in the last character are refused', async () => {
        await expectInvalidToken(variants.unusedBits);
      });
    });
  });

  describe('key set', () => {
    it("control: a token signed with the key server's 2048-bit key passes", async () => {
      await expectAccepted(await mint({ key: keyedKey.privateKey, header: { kid: keyedKey.kid }, claims: { iss: issuerOf.keyed } }));
    });

    it('a token signed with a 1024-bit RSA key from the JWKS is refused (401: other keys are usable)', async () => {
      await expectInvalidToken(signWithWeakKey({ iss: issuerOf.keyed }));
    });

    it('a JWKS holding only a 1024-bit RSA key counts as no keys: 503 with Retry-After', async () => {
      expect(stack.keyServer.hits(jwksPath('weakOnly')).length).toBeGreaterThan(0); // fetched, then refused
      await expectIssuerUnavailable(signWithWeakKey({ iss: issuerOf.weakOnly }));
    });

    it('100 concurrent unknown kids cost the IdP at most one JWKS fetch (cooldown), all refused', async () => {
      const before = stack.keyServer.hits(jwksPath('keyed')).length;
      const tokens = await Promise.all(Array.from({ length: 100 }, () => attackerToken({ kid: `forged-${randomUUID()}` }, { iss: issuerOf.keyed })));
      const statuses = await Promise.all(tokens.map(async (token) => {
        const response = await send(token);
        await response.arrayBuffer();
        return response.status;
      }));
      expect(new Set(statuses)).toEqual(new Set([401]));
      expect(stack.keyServer.hits(jwksPath('keyed')).length - before).toBeLessThanOrEqual(1);
      expect(stack.upstream.requests).toEqual([]);
    });

    const answers: Record<UnavailableMode, string> = {
      '404': '404',
      '500': '500',
      garbage: 'garbage (200, not JSON)',
      'not-a-jwks': 'JSON that is not a JWK Set',
      redirect: "a redirect to the attacker's keys (not followed)",
      timeout: 'nothing within the timeout',
    };
    it.each(UNAVAILABLE_MODES.map((mode) => [answers[mode], mode] as const))('a JWKS that answers %s, keys never fetched: 503 with Retry-After, nothing upstream', async (_answer, mode) => {
      expect(stack.keyServer.hits(jwksPath(mode)).length).toBeGreaterThan(0); // the gateway did try this URL
      await expectIssuerUnavailable(await attackerToken({}, { iss: issuerOf[mode] }));
      if (mode === 'redirect') expect(stack.keyServer.hits('/redirect-target/jwks')).toEqual([]); // not followed
    });

    it('100 concurrent requests while the JWKS fetch fails: one fetch, all refused, the gateway keeps serving', async () => {
      const path = jwksPath('burst');
      // The startup attempt (or an earlier one) must be older than the retry interval, or the
      // burst would fetch nothing at all and prove nothing about single flight.
      const last = stack.keyServer.hits(path).at(-1)!.at;
      await sleep(Math.max(0, last + KEY_RETRY_MS + 250 - Date.now()));
      const started = Date.now();
      const tokens = await Promise.all(Array.from({ length: 100 }, () => attackerToken({}, { iss: issuerOf.burst })));
      stack.upstream.clearLog();
      const responses = await Promise.all(tokens.map(async (token) => {
        const response = await send(token);
        await response.arrayBuffer();
        return { status: response.status, retryAfter: response.headers.get('retry-after') };
      }));
      // The fetch answers 500 after 200 ms: every request arrives while it is in flight.
      expect(stack.keyServer.hits(path).filter((hit) => hit.at >= started)).toHaveLength(1);
      for (const { status, retryAfter } of responses) {
        expect(status).toBe(503);
        expect(retryAfter).toMatch(/^[1-9][0-9]*$/);
      }
      expect(stack.upstream.requests).toEqual([]);
      expect((await fetch(`${stack.gateway.url}/healthz`)).status).toBe(200);
      await expectAccepted(await mint());
    });
  });

  describe('afterwards', () => {
    // Checked last: a forged DELETE that got through would have ended this session.
    it("the victim's session survived every forged POST, GET and DELETE", async () => {
      const response = await send(realToken);
      const body = (await response.json()) as { result?: unknown };
      expect(response.status).toBe(200);
      expect(body.result).toMatchObject({ content: [{ type: 'text', text: expect.any(String) }] });
    });
  });
});
