import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTHeaderParameters } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyJwtAccessToken } from '../../src/auth/verify-jwt.js';
import { parseConfig } from '../../src/config/load.js';
import type { IssuerConfig } from '../../src/config/types.js';
import { rejectionOf } from '../support/refusals.js';

/**
 * Each IdP preset against a token in that IdP's real shape (header and claims as the IdP's
 * documentation and real tokens show them), signed with a local key: the preset must find the
 * subject, client and scopes where that IdP puts them, and accept its typ.
 */
const RESOURCE = 'https://mcp.example.com/mcp';
const NOW = Math.floor(Date.now() / 1000);

let dir: string;
let privateKey: CryptoKey;
let publicJwk: JWK;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-gw-presets-'));
  await mkdir(join(dir, 'policies'));
  await writeFile(join(dir, 'policies', 'p.yaml'), 'scopes: []\n');
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256' };
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The issuer as the loader builds it from `issuerYaml` (preset defaults applied). */
async function issuerFrom(issuerYaml: string): Promise<IssuerConfig> {
  const config = await parseConfig(
    join(dir, 'gateway.yaml'),
    `issuers:\n  - ${issuerYaml}\nroutes:\n  - { name: r, path: /mcp, upstream: "http://127.0.0.1:1/mcp", policy: policies/p.yaml }\n`,
  );
  return config.issuers[0]!;
}

async function sign(header: Omit<JWTHeaderParameters, 'alg'>, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1', ...header }).sign(privateKey);
}

async function verify(issuerYaml: string, token: string) {
  const config = await issuerFrom(issuerYaml);
  return verifyJwtAccessToken(token, { config, keys: createLocalJWKSet({ keys: [publicJwk] }) }, RESOURCE);
}

const times = { iat: NOW - 10, exp: NOW + 3600 };

describe('issuer presets read tokens in their IdP real shape', () => {
  it('generic: an RFC 9068 at+jwt with scope and client_id', async () => {
    const iss = 'https://idp.example.com';
    const token = await sign({ typ: 'at+jwt' }, { iss, sub: 'u1', aud: RESOURCE, client_id: 'c1', scope: 'todo:read todo:write', jti: 'j', ...times });
    const principal = await verify(`issuer: ${iss}`, token);
    expect(principal).toMatchObject({ subject: 'u1', clientId: 'c1' });
    expect([...principal.scopes]).toEqual(['todo:read', 'todo:write']);
  });

  it('generic refuses a plain JWT typ and a token without typ (an ID token is not an access token)', async () => {
    const iss = 'https://idp.example.com';
    const claims = { iss, sub: 'u1', aud: RESOURCE, ...times };
    for (const header of [{ typ: 'JWT' }, {}]) {
      expect((await rejectionOf(verify(`issuer: ${iss}`, await sign(header, claims)))).message).toBe('The access token type is not accepted');
    }
  });

  it('auth0: default profile (typ JWT), scope plus RBAC permissions, client in azp, audience array with userinfo', async () => {
    const iss = 'https://acme.us.auth0.com/';
    const token = await sign(
      { typ: 'JWT' },
      { iss, sub: 'auth0|65a1b2c3d4', aud: [RESOURCE, 'https://acme.us.auth0.com/userinfo'], azp: 'AbCdEf123456', scope: 'openid profile todo:read', permissions: ['todo:write', 'todo:admin'], ...times },
    );
    const principal = await verify(`{ issuer: "${iss}", preset: auth0 }`, token);
    expect(principal).toMatchObject({ subject: 'auth0|65a1b2c3d4', clientId: 'AbCdEf123456' });
    expect([...principal.scopes]).toEqual(['openid', 'profile', 'todo:read', 'todo:write', 'todo:admin']);
  });

  it('okta: no typ header, scp array, client in cid, a fixed authorization-server audience', async () => {
    const iss = 'https://dev-123456.okta.com/oauth2/default';
    const token = await sign(
      {},
      { ver: 1, jti: 'AT.abc', iss, aud: 'api://mcp', cid: '0oa1b2c3d4', uid: '00u1b2c3d4', scp: ['openid', 'todo:read'], auth_time: NOW - 60, sub: 'alice@example.com', ...times },
    );
    const principal = await verify(`{ issuer: "${iss}", preset: okta, audiences: ["api://mcp"] }`, token);
    expect(principal).toMatchObject({ subject: 'alice@example.com', clientId: '0oa1b2c3d4' });
    expect([...principal.scopes]).toEqual(['openid', 'todo:read']);
  });

  it('entra: v2 delegated token, scp string, user keyed by oid, client in azp', async () => {
    const tid = '72f988bf-86f1-41af-91ab-2d7cd011db47';
    const iss = `https://login.microsoftonline.com/${tid}/v2.0`;
    const token = await sign(
      { typ: 'JWT' },
      {
        aud: '6e74172b-0000-4843-9ff4-e66a39bb0001', iss, nbf: NOW - 10, aio: 'AWQAm/8T', azp: '6e74172b-be56-4843-9ff4-e66a39bb12e3', azpacr: '0', name: 'Alice',
        oid: '690222be-ff1a-4d56-abd1-7e4f7d38e474', preferred_username: 'alice@contoso.com', rh: '0.ARoA', scp: 'Todo.Read Todo.Write',
        sub: 'pairwise-sub-value', tid, uti: 'fqiBqXLPj0eQa82S-IYFAA', ver: '2.0', ...times,
      },
    );
    // v2 access tokens carry the API's application (client) id as aud, a GUID compared exactly.
    const principal = await verify(`{ issuer: "${iss}", preset: entra, audiences: ["6e74172b-0000-4843-9ff4-e66a39bb0001"] }`, token);
    expect(principal).toMatchObject({ subject: '690222be-ff1a-4d56-abd1-7e4f7d38e474', clientId: '6e74172b-be56-4843-9ff4-e66a39bb12e3' });
    expect([...principal.scopes]).toEqual(['Todo.Read', 'Todo.Write']);
  });

  it('entra: v1 application token, roles, client in appid', async () => {
    const tid = '72f988bf-86f1-41af-91ab-2d7cd011db47';
    const iss = `https://sts.windows.net/${tid}/`;
    const token = await sign(
      { typ: 'JWT' },
      { aud: 'api://mcp-gateway', iss, appid: '11111111-2222-3333-4444-555555555555', appidacr: '1', oid: 'sp-object-id', roles: ['Todo.Admin'], sub: 'sp-object-id', tid, ver: '1.0', ...times },
    );
    const principal = await verify(`{ issuer: "${iss}", preset: entra, audiences: ["api://mcp-gateway"] }`, token);
    expect(principal).toMatchObject({ subject: 'sp-object-id', clientId: '11111111-2222-3333-4444-555555555555' });
    expect([...principal.scopes]).toEqual(['Todo.Admin']);
  });

  it('keycloak: typ JWT, scope string, realm roles through a nested path, client in azp', async () => {
    const iss = 'https://kc.example.com/realms/acme';
    const token = await sign(
      { typ: 'JWT' },
      {
        jti: 'j', iss, aud: [RESOURCE, 'account'], sub: 'f3c1a2b4-uuid', typ: 'Bearer', azp: 'mcp-client', session_state: 's', acr: '1',
        'allowed-origins': ['https://app.example.com'], realm_access: { roles: ['offline_access', 'todo:admin'] },
        resource_access: { account: { roles: ['manage-account'] } }, scope: 'openid todo:read email profile', sid: 's', email_verified: true,
        preferred_username: 'alice', ...times,
      },
    );
    const principal = await verify(`{ issuer: "${iss}", preset: keycloak, claims: { scopes: [scope, realm_access.roles] } }`, token);
    expect(principal).toMatchObject({ subject: 'f3c1a2b4-uuid', clientId: 'mcp-client' });
    expect([...principal.scopes]).toEqual(['openid', 'todo:read', 'email', 'profile', 'offline_access', 'todo:admin']);
  });

  it('fusionauth: typ JWT, application roles as scopes, client in applicationId', async () => {
    const iss = 'https://auth.acme.com';
    const token = await sign(
      { typ: 'JWT' },
      {
        aud: RESOURCE, iss, sub: '2ffe6f9a-uuid', jti: 'j', authenticationType: 'PASSWORD', email: 'alice@acme.com', email_verified: true,
        applicationId: '85a03867-dccf-4882-adde-1a79aeec50df', scope: 'offline_access', roles: ['todo:read'], auth_time: NOW - 60, tid: 't', ...times,
      },
    );
    const principal = await verify(`{ issuer: "${iss}", preset: fusionauth }`, token);
    expect(principal).toMatchObject({ subject: '2ffe6f9a-uuid', clientId: '85a03867-dccf-4882-adde-1a79aeec50df' });
    expect([...principal.scopes]).toEqual(['offline_access', 'todo:read']);
  });

  it('wso2 / Asgardeo: typ at+jwt, scope, client_id; with a scope prefix, only prefixed scopes count', async () => {
    const iss = 'https://api.asgardeo.io/t/acme/oauth2/token';
    const token = await sign(
      { typ: 'at+jwt', x5t: 'thumb' },
      { sub: 'a1b2-uuid', aut: 'APPLICATION_USER', iss, client_id: 'Xy12Ab', aud: RESOURCE, nbf: NOW - 10, azp: 'Xy12Ab', org_id: 'o', scope: 'openid urn:mcp:todo:read', org_name: 'acme', jti: 'j', ...times },
    );
    const principal = await verify(`{ issuer: "${iss}", preset: wso2, claims: { scopePrefix: "urn:mcp:" } }`, token);
    expect(principal).toMatchObject({ subject: 'a1b2-uuid', clientId: 'Xy12Ab' });
    expect([...principal.scopes]).toEqual(['todo:read']);
  });

  it('google: a Google-signed ID token for this service (service-to-service), restricted by requireClaims, no scopes', async () => {
    const iss = 'https://accounts.google.com';
    const claims = { aud: RESOURCE, azp: '112233445566778899', email_verified: true, iss, sub: '112233445566778899', ...times };
    const issuerYaml = `{ issuer: "${iss}", preset: google, requireClaims: { email: [svc@project.iam.gserviceaccount.com] } }`;
    const principal = await verify(issuerYaml, await sign({ typ: 'JWT' }, { ...claims, email: 'svc@project.iam.gserviceaccount.com' }));
    expect(principal).toMatchObject({ subject: '112233445566778899', clientId: '112233445566778899' });
    expect(principal.scopes.size).toBe(0);
    // Anyone else's Google identity, minted for this audience, is refused.
    const stranger = await sign({ typ: 'JWT' }, { ...claims, email: 'someone@other-project.iam.gserviceaccount.com' });
    expect((await rejectionOf(verify(issuerYaml, stranger))).message).toBe('The access token lacks a claim this resource requires');
  });

  it("keycloak: an ID token (payload typ ID) is refused even though its header typ is the access token's", async () => {
    const iss = 'https://kc.example.com/realms/acme';
    const token = await sign({ typ: 'JWT' }, { iss, aud: RESOURCE, sub: 'u', typ: 'ID', azp: 'mcp-client', ...times });
    expect((await rejectionOf(verify(`{ issuer: "${iss}", preset: keycloak }`, token))).message).toBe('The access token lacks a claim this resource requires');
  });

  it('entra: requireClaims pins a tenant, so a multi-tenant app does not admit every tenant', async () => {
    const iss = 'https://login.microsoftonline.com/common/v2.0';
    const claims = { iss, aud: '6e74172b-be56-4843-9ff4-e66a39bb12e3', oid: 'o', scp: 'Todo.Read', ver: '2.0', ...times };
    const issuerYaml = `{ issuer: "${iss}", preset: entra, audiences: ["6e74172b-be56-4843-9ff4-e66a39bb12e3"], requireClaims: { tid: 72f988bf-86f1-41af-91ab-2d7cd011db47 } }`;
    expect((await verify(issuerYaml, await sign({ typ: 'JWT' }, { ...claims, tid: '72f988bf-86f1-41af-91ab-2d7cd011db47' }))).subject).toBe('o');
    expect((await rejectionOf(verify(issuerYaml, await sign({ typ: 'JWT' }, { ...claims, tid: 'another-tenant' })))).message).toBe('The access token lacks a claim this resource requires');
  });

  it('an explicit setting overrides the preset (entra with subject sub)', async () => {
    const iss = 'https://login.microsoftonline.com/t/v2.0';
    const token = await sign({ typ: 'JWT' }, { iss, aud: RESOURCE, sub: 'pairwise', oid: 'oid-1', scp: 'a', ...times });
    expect((await verify(`{ issuer: "${iss}", preset: entra, claims: { subject: sub } }`, token)).subject).toBe('pairwise');
  });

  it('refuses a token whose mapped subject claim is missing', async () => {
    const iss = 'https://login.microsoftonline.com/t/v2.0';
    const token = await sign({ typ: 'JWT' }, { iss, aud: RESOURCE, sub: 'pairwise', scp: 'a', ...times });
    expect((await rejectionOf(verify(`{ issuer: "${iss}", preset: entra }`, token))).message).toBe('The access token names no subject');
  });
});
