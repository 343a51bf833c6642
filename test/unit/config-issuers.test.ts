import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { configProblems } from '../support/config-fixtures.js';

/** Issuer settings beyond the basics: presets, key sources, audiences, typ and route trust. */
let dir: string;
const file = () => join(dir, 'gateway.yaml');
const ROUTES = `routes:
  - { name: todo, path: /mcp, upstream: "http://127.0.0.1:9500/mcp", policy: p.yaml }
  - { name: admin, path: /admin, upstream: "http://127.0.0.1:9500/mcp", policy: p.yaml }
`;
const JWKS = { keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k' }] };

const problems = async (issuers: string) => (await configProblems(file(), `issuers:\n${issuers}${ROUTES}`)).map((p) => `${p.line}:${p.col} ${p.message}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-gw-issuers-'));
  await mkdir(join(dir, 'keys'));
  await writeFile(join(dir, 'p.yaml'), 'scopes: []\n');
  await writeFile(join(dir, 'keys', 'jwks.json'), JSON.stringify(JWKS));
  await writeFile(join(dir, 'keys', 'not-jwks.json'), '{"keys": []}');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('issuer settings', () => {
  it('loads keys from a file, a typ list normalized, audiences and routes', async () => {
    const config = await parseConfig(
      file(),
      `issuers:\n  - { issuer: "https://idp.example.com", jwksFile: keys/jwks.json, typ: [application/AT+JWT, JWT, absent], audiences: ["api://mcp"], routes: [admin] }\n  - { issuer: "https://other.example.com" }\n${ROUTES}`,
    );
    expect(config.issuers[0]).toMatchObject({ jwks: JWKS, typ: ['at+jwt', 'jwt', 'absent'], audiences: ['api://mcp'], routes: ['admin'] });
    expect(config.issuers[1]!.routes).toBeUndefined();
  });

  it('applies a preset and lets explicit claims override it key by key', async () => {
    const config = await parseConfig(file(), `issuers:\n  - { issuer: "https://kc.example.com/realms/a", preset: keycloak, claims: { scopes: [realm_access.roles] } }\n${ROUTES}`);
    expect(config.issuers[0]).toMatchObject({ preset: 'keycloak', typ: ['jwt', 'at+jwt'], claims: { scopes: ['realm_access.roles'], subject: 'sub', client: ['azp', 'client_id'] } });
  });

  it('refuses two key sources, an http jwksUri off loopback, an unknown route, and an unreadable or empty key file', async () => {
    expect(await problems('  - { issuer: "https://idp.example.com", jwksUri: "https://idp.example.com/jwks", jwksFile: keys/jwks.json }\n')).toEqual([
      '2:93 give issuers.0 one key source: jwksUri, jwksFile are exclusive',
    ]);
    expect(await problems('  - { issuer: "https://idp.example.com", jwksUri: "http://idp.example.com/jwks" }\n')).toEqual([
      "2:51 jwksUri 'http://idp.example.com/jwks' must be an https URL (plain http only on loopback)",
    ]);
    expect(await problems('  - { issuer: "https://idp.example.com", routes: [todo, tood] }\n')).toEqual([
      "2:57 issuers.0.routes names no route 'tood'",
      "5:13 route 'admin' is trusted by no issuer (every issuer lists routes without it)",
    ]);
    expect(await problems('  - { issuer: "https://idp.example.com", jwksFile: keys/missing.json }\n')).toEqual([
      expect.stringMatching(/^2:52 cannot read issuers\.0\.jwksFile 'keys\/missing\.json': ENOENT/),
    ]);
    expect(await problems('  - { issuer: "https://idp.example.com", jwksFile: keys/not-jwks.json }\n')).toEqual([
      `2:52 issuers.0.jwksFile 'keys/not-jwks.json' is not a JWKS ({"keys": [...]} with a kty in every key)`,
    ]);
  });

  it('refuses an http(s) audience that no token could match (userinfo, a fragment, a space), and takes any other', async () => {
    expect(await problems('  - { issuer: "https://idp.example.com", audiences: ["https://gw@mcp.example.com/mcp", "https://mcp.example.com/mcp#x", "http://mcp.example.com/m cp"] }\n')).toEqual([
      "2:54 audience 'https://gw@mcp.example.com/mcp' is not an http(s) URI a token could match: no userinfo, fragment, spaces or characters outside RFC 3986",
      "2:88 audience 'https://mcp.example.com/mcp#x' is not an http(s) URI a token could match: no userinfo, fragment, spaces or characters outside RFC 3986",
      "2:121 audience 'http://mcp.example.com/m cp' is not an http(s) URI a token could match: no userinfo, fragment, spaces or characters outside RFC 3986",
    ]);
    const config = await parseConfig(file(), `issuers:\n  - { issuer: "https://idp.example.com", audiences: ["HTTPS://MCP.example.com:443/mcp", "api://mcp", "00000000-0000-0000-0000-000000000000"] }\n${ROUTES}`);
    expect(config.issuers[0]!.audiences).toEqual(['HTTPS://MCP.example.com:443/mcp', 'api://mcp', '00000000-0000-0000-0000-000000000000']);
  });

  it('refuses an unknown preset and a malformed typ', async () => {
    const found = await problems('  - { issuer: "https://idp.example.com", preset: azure, typ: ["at jwt"] }\n');
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/^2:50 issuers\.0\.preset must be one of/);
    expect(found[1]).toBe('2:63 issuers.0.typ.0 has an invalid value (a typ value such as at+jwt, JWT or application/at+jwt, or absent)');
  });

  it('authorizationServerMetadata: defaults to the only issuer, and must name a configured one when there are several', async () => {
    const config = await parseConfig(file(), `issuers:\n  - issuer: "https://idp.example.com"\nauthorizationServerMetadata: { mode: serve }\n${ROUTES}`);
    expect(config.authorizationServerMetadata).toEqual({ mode: 'serve', issuer: 'https://idp.example.com' });
    const two = 'issuers:\n  - issuer: "https://a.example.com"\n  - issuer: "https://b.example.com"\n';
    expect((await configProblems(file(), `${two}authorizationServerMetadata: { mode: redirect }\n${ROUTES}`)).map((p) => p.message)).toEqual([
      'authorizationServerMetadata.issuer is needed when several issuers are configured',
    ]);
    expect((await configProblems(file(), `${two}authorizationServerMetadata: { mode: redirect, issuer: "https://c.example.com" }\n${ROUTES}`)).map((p) => p.message)).toEqual([
      "authorizationServerMetadata.issuer 'https://c.example.com' is not a configured issuer",
    ]);
  });

  it('refuses configured keys of which none can verify tokens', async () => {
    const found = await problems('  - { issuer: "https://idp.example.com", jwks: { keys: [{ kty: EC, use: enc }, { kty: RSA, key_ops: [encrypt] }] } }\n');
    expect(found).toEqual(["2:48 issuers.0.jwks holds no key that can verify tokens (key 0 is for use 'enc'; key 1 key_ops does not allow verify)"]);
  });

  it('refuses secret key material in the config outright (a leak to fix, not a key to skip)', async () => {
    expect(await problems('  - { issuer: "https://idp.example.com", jwks: { keys: [{ kty: oct, k: c2VjcmV0 }] } }\n')).toEqual([
      '2:48 issuers.0.jwks: key 0 is a symmetric (oct) key; give only public signature keys',
    ]);
  });

  it('insists on requireClaims for the google preset, which any Google account could otherwise pass', async () => {
    expect(await problems('  - { issuer: "https://accounts.google.com", preset: google }\n')).toEqual([
      '2:54 preset google admits any Google account: restrict it with requireClaims (e.g. hd, email or azp)',
    ]);
  });
});
