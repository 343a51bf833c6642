import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { accessTokenHash } from '../../src/auth/dpop.js';
import type { Gateway } from '../../src/gateway.js';
import { PROTOCOL_VERSION, toolCall } from '../support/mcp-http.js';
import { startSingleRouteGateway } from '../support/single-route-gateway.js';
import { TODO_POLICY } from '../support/stack.js';

/**
 * DPoP (RFC 9449) with tokens the real IdP binds to a client key (cnf.jkt): the gateway admits
 * a bound token only with the DPoP scheme and a fresh, single-use proof of that key for this
 * request, and never forwards a request whose proof fails.
 */
interface ClientKey {
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly alg: 'ES256';
}

async function clientKey(): Promise<ClientKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { privateKey, publicJwk: await exportJWK(publicKey), alg: 'ES256' };
}

interface ProofOptions {
  readonly htm?: string;
  readonly htu?: string;
  readonly iat?: number;
  readonly jti?: string;
  readonly ath?: string | null;
  readonly key?: ClientKey;
  readonly typ?: string;
}

describe('DPoP-bound tokens', () => {
  let idp: DevIdp;
  let upstream: SampleUpstream;
  let dir: string;
  const gateways: Gateway[] = [];
  let allowed: Gateway;
  let required: Gateway;
  let off: Gateway;
  let key: ClientKey;
  let bound: string;

  /** Its resource is http://localhost/mcp: a host to write in upper case, a default port to write out. */
  let named: Gateway;

  const start = async (dpop: string, publicUrl?: string) => {
    const gateway = await startSingleRouteGateway({ dir, issuerYaml: `{ issuer: "${idp.issuer}", dpop: ${dpop}, audiences: ["${RESOURCE}"] }`, upstreamUrl: upstream.url, ...(publicUrl ? { publicUrl } : {}) });
    gateways.push(gateway);
    return gateway;
  };
  /** One audience for all three gateways, so one bound token serves them all. */
  const RESOURCE = 'http://localhost:8443/mcp';

  const proof = async (gateway: Gateway, token: string, options: ProofOptions = {}) => {
    const signer = options.key ?? key;
    const claims: Record<string, unknown> = {
      htm: options.htm ?? 'POST',
      htu: options.htu ?? `${gateway.url}/mcp`,
      jti: options.jti ?? randomUUID(),
      iat: options.iat ?? Math.floor(Date.now() / 1000),
    };
    if (options.ath !== null) claims.ath = options.ath ?? accessTokenHash(token);
    return new SignJWT(claims).setProtectedHeader({ typ: options.typ ?? 'dpop+jwt', alg: signer.alg, jwk: signer.publicJwk }).sign(signer.privateKey);
  };

  const call = (gateway: Gateway, headers: Record<string, string>, id = 1) =>
    fetch(`${gateway.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL_VERSION, ...headers },
      body: JSON.stringify(toolCall(id, 'list_todos')),
    });

  /** A refusal: 401, the challenge names DPoP with its algorithms, and nothing reached the upstream. */
  const expectRefused = async (response: Response, error: string, description: string) => {
    expect(response.status).toBe(401);
    const challenge = response.headers.get('www-authenticate')!;
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`DPoP error="${error}"`);
    expect(challenge).toMatch(/algs="[^"]*ES256[^"]*"/);
    expect(((await response.json()) as { error: { message: string } }).error.message).toBe(description);
    expect(upstream.requests).toHaveLength(0);
  };

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: ['todo:read', 'todo:write'] });
    upstream = await startSampleUpstream({ responseMode: 'json', stateless: true });
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-dpop-'));
    await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
    [allowed, required, off, named] = await Promise.all([start('allowed'), start('required'), start('off'), start('allowed', 'http://localhost')]);
    key = await clientKey();
    bound = (await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', dpopKey: key })).accessToken;
  }, 30_000);

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await Promise.all([upstream?.close(), idp?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('the real IdP bound the token to our key', async () => {
    expect((decodeJwt(bound).cnf as { jkt: string }).jkt).toBe(await calculateJwkThumbprint(key.publicJwk, 'sha256'));
  });

  it('a valid proof with the DPoP scheme is admitted and forwarded', async () => {
    upstream.clearLog();
    for (const gateway of [allowed, required]) {
      const response = await call(gateway, { authorization: `DPoP ${bound}`, dpop: await proof(gateway, bound) });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ result: {} });
    }
    expect(upstream.requests).toHaveLength(2);
  });

  it('an htu differing only where the rule allows (scheme and host case, the default port, query and fragment) is admitted', async () => {
    upstream.clearLog();
    const port = new URL(allowed.url).port;
    const admitted: [Gateway, string][] = [
      [allowed, `HTTP://127.0.0.1:${port}/mcp`],
      [allowed, `${allowed.url}/mcp?x=1#f`],
      [named, 'http://localhost/mcp'],
      [named, 'HTTP://LocalHost:80/mcp'],
      [named, 'http://LOCALHOST/mcp?q#frag'],
    ];
    for (const [gateway, htu] of admitted) {
      const response = await call(gateway, { authorization: `DPoP ${bound}`, dpop: await proof(gateway, bound, { htu }) });
      expect(response.status, htu).toBe(200);
      await response.text();
    }
    expect(upstream.requests).toHaveLength(admitted.length);
  });

  describe('refused, never forwarded', () => {
    it('a missing proof', async () => {
      upstream.clearLog();
      await expectRefused(await call(allowed, { authorization: `DPoP ${bound}` }), 'invalid_dpop_proof', 'A DPoP proof is required');
    });

    it('the wrong htm', async () => {
      upstream.clearLog();
      await expectRefused(await call(allowed, { authorization: `DPoP ${bound}`, dpop: await proof(allowed, bound, { htm: 'GET' }) }), 'invalid_dpop_proof', 'The DPoP proof is for another method');
    });

    it('the wrong htu (another route or host)', async () => {
      upstream.clearLog();
      for (const htu of [`${allowed.url}/other`, 'https://evil.example/mcp']) {
        await expectRefused(await call(allowed, { authorization: `DPoP ${bound}`, dpop: await proof(allowed, bound, { htu }) }), 'invalid_dpop_proof', 'The DPoP proof is for another URI');
      }
    });

    it('an htu that another parser would read as the route URL: dot segments, userinfo, other spellings (issue 23)', async () => {
      upstream.clearLog();
      const port = new URL(allowed.url).port;
      for (const htu of [
        `${allowed.url}/other/../mcp`,
        `${allowed.url}/./mcp`,
        `http://attacker@127.0.0.1:${port}/mcp`,
        `http://0x7f.1:${port}/mcp`,
        `http://2130706433:${port}/mcp`,
        `${allowed.url}/%6dcp`,
        `${allowed.url}/mcp/`,
        `${allowed.url}\\mcp`,
        ` ${allowed.url}/mcp`,
      ]) {
        await expectRefused(await call(allowed, { authorization: `DPoP ${bound}`, dpop: await proof(allowed, bound, { htu }) }), 'invalid_dpop_proof', 'The DPoP proof is for another URI');
      }
      for (const htu of ['http://user@localhost/mcp', 'http://localhost/other/../mcp', 'http://localhost:/mcp', 'http://localhost:080/mcp']) {
        await expectRefused(await call(named, { authorization: `DPoP ${bound}`, dpop: await proof(named, bound, { htu }) }), 'invalid_dpop_proof', 'The DPoP proof is for another URI');
      }
    });

    it('a replayed jti (the same proof twice)', async () => {
      const replayed = await proof(allowed, bound);
      const first = await call(allowed, { authorization: `DPoP ${bound}`, dpop: replayed });
      expect(first.status).toBe(200);
      await first.text();
      upstream.clearLog();
      await expectRefused(await call(allowed, { authorization: `DPoP ${bound}`, dpop: replayed }), 'invalid_dpop_proof', 'The DPoP proof was already used');
    });

    it('a stale iat, and one from the future', async () => {
      upstream.clearLog();
      const now = Math.floor(Date.now() / 1000);
      await expectRefused(await call(allowed, { authorization: `DPoP ${bound}`, dpop: await proof(allowed, bound, { iat: now - 120 }) }), 'invalid_dpop_proof', 'The DPoP proof is too old');
      await expectRefused(await call(allowed, { authorization: `DPoP ${bound}`, dpop: await proof(allowed, bound, { iat: now + 120 }) }), 'invalid_dpop_proof', 'The DPoP proof is issued in the future');
    });

    it('a wrong or missing ath', async () => {
      upstream.clearLog();
      await expectRefused(await call(allowed, { authorization: `DPoP ${bound}`, dpop: await proof(allowed, bound, { ath: accessTokenHash('another token') }) }), 'invalid_dpop_proof', 'The DPoP proof is not for this access token');
      await expectRefused(await call(allowed, { authorization: `DPoP ${bound}`, dpop: await proof(allowed, bound, { ath: null }) }), 'invalid_dpop_proof', 'The DPoP proof is not for this access token');
    });

    it("a proof made with another key (a thief holding the token but not the key)", async () => {
      upstream.clearLog();
      const thief = await clientKey();
      await expectRefused(await call(allowed, { authorization: `DPoP ${bound}`, dpop: await proof(allowed, bound, { key: thief }) }), 'invalid_dpop_proof', 'The DPoP proof key is not the key the token is bound to');
    });

    it('a proof with the wrong typ', async () => {
      upstream.clearLog();
      await expectRefused(await call(allowed, { authorization: `DPoP ${bound}`, dpop: await proof(allowed, bound, { typ: 'JWT' }) }), 'invalid_dpop_proof', 'The DPoP proof is missing a required claim or has the wrong typ');
    });

    it('a bound token sent as Bearer (a stolen token without its key)', async () => {
      upstream.clearLog();
      const response = await call(allowed, { authorization: `Bearer ${bound}` });
      expect(response.status).toBe(401);
      const challenge = response.headers.get('www-authenticate')!;
      expect(challenge).toContain('Bearer error="invalid_token"');
      expect(challenge).toMatch(/DPoP algs="/);
      await response.text();
      expect(upstream.requests).toHaveLength(0);
    });
  });

  describe('per issuer: required and off', () => {
    it('required: an unbound token is refused, and every 401 offers DPoP', async () => {
      const unbound = (await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read' })).accessToken;
      upstream.clearLog();
      const response = await call(required, { authorization: `Bearer ${unbound}` });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { message: string } }).error.message).toBe('The access token must be DPoP-bound');
      const anonymous = await call(required, {});
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer .*resource_metadata="[^"]+", DPoP algs="/);
      await anonymous.text();
      expect(upstream.requests).toHaveLength(0);
      // allowed: the same unbound token works as Bearer.
      const plain = await call(allowed, { authorization: `Bearer ${unbound}` });
      expect(plain.status).toBe(200);
      await plain.text();
    });

    it('a token already verified meets the same rules on later requests (answered from the verified-token cache)', async () => {
      const unbound = (await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read' })).accessToken;
      const message = async (response: Response) => ((await response.json()) as { error: { message: string } }).error.message;
      for (let attempt = 0; attempt < 3; attempt++) {
        const refused = await call(required, { authorization: `Bearer ${unbound}` });
        expect(refused.status).toBe(401);
        expect(await message(refused)).toBe('The access token must be DPoP-bound');
        const admitted = await call(allowed, { authorization: `Bearer ${unbound}` });
        expect(admitted.status).toBe(200);
        await admitted.text();
        const wrongScheme = await call(allowed, { authorization: `DPoP ${unbound}` });
        expect(wrongScheme.status).toBe(401);
        expect(await message(wrongScheme)).toBe('The access token is not DPoP-bound');
      }
    });

    it('off: a bound token, even with a valid proof, is refused', async () => {
      upstream.clearLog();
      const response = await call(off, { authorization: `DPoP ${bound}`, dpop: await proof(off, bound) });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { message: string } }).error.message).toBe('DPoP is not accepted for this issuer');
      expect(upstream.requests).toHaveLength(0);
    });
  });
});
