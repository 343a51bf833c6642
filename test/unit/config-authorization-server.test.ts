import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problems.js';
import { settleReload } from '../../src/config/restart-only.js';
import { configProblems } from '../support/config-fixtures.js';
import { TODO_POLICY } from '../support/stack.js';

/** The example, as an operator writes it (Entra in front, a key file shared by replicas). */
const EXAMPLE = `publicUrl: https://mcp.example.com
authorizationServer:
  issuer: https://mcp.example.com
  signingKeys: { file: as-keys.jwks }
  upstream:
    preset: entra
    issuer: https://login.microsoftonline.com/0b5d8b5e-3d3c-4c8a-9f7e-1d1e4f3a2b6c/v2.0
    clientId: mcp-gateway
    clientSecretFile: idp-client-secret
    scopes: [openid, profile, email]
    tokenEncryptionKeyFile: idp-token-key
  registration: { metadataDocuments: true, dynamic: true }
  clients:
    - { clientId: desktop-app, clientName: Desktop, redirectUris: ["http://127.0.0.1/callback", "com.example.desktop:/oauth"] }
  tokens: { accessTokenTtl: 10m, refreshTokenTtl: 30d }
  grants:
    - scopes: [todo:read]
    - scopes: [todo:write, todo:admin]
      when: { claims: { groups: todo-admins } }
routes:
  - name: todo
    path: /mcp
    upstream: http://127.0.0.1:9500/mcp
    policy: policies/todo.yaml
`;

const privateJwk = (kid: string, type: 'ec' | 'rsa' = 'ec', bits = 2048) => {
  const { privateKey } = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: bits });
  return { ...privateKey.export({ format: 'jwk' }), kid };
};

describe('config: authorizationServer', () => {
  let dir: string;
  const file = () => join(dir, 'gateway.yaml');
  const load = (text: string) => parseConfig(file(), text);
  const problems = async (text: string) => (await configProblems(file(), text)).map(formatProblem);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-as-config-'));
    await mkdir(join(dir, 'policies'));
    await writeFile(join(dir, 'policies', 'todo.yaml'), TODO_POLICY);
    await writeFile(join(dir, 'as-keys.jwks'), JSON.stringify({ keys: [privateJwk('new'), privateJwk('old', 'rsa')] }));
    await writeFile(join(dir, 'idp-client-secret'), 's3cret\n');
    await writeFile(join(dir, 'idp-token-key'), `${randomBytes(32).toString('base64url')}\n`);
    await writeFile(join(dir, 'public.jwks'), JSON.stringify({ keys: [{ ...privateJwk('pub'), d: undefined }] }));
    await writeFile(join(dir, 'small.jwks'), JSON.stringify({ keys: [privateJwk('a'), privateJwk('a', 'rsa', 1024)] }));
    await writeFile(join(dir, 'short-key'), 'c2hvcnQ');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("loads the issue's example, with presets' defaults and the files read", async () => {
    const config = await load(EXAMPLE);
    const as = config.authorizationServer!;
    expect(config.issuers).toEqual([]);
    expect(as.signingKeys!.map((k) => k.kid)).toEqual(['new', 'old']);
    expect(as.upstream).toMatchObject({ preset: 'entra', clientSecret: 's3cret', subjectClaim: 'oid', scopes: ['openid', 'profile', 'email'] });
    expect(as.upstream.tokenEncryptionKey).toMatch(/^[\w-]{43}$/);
    expect(as.tokens).toEqual({ accessTokenTtlMs: 600_000, refreshTokenTtlMs: 30 * 86_400_000, claims: [] });
    expect(as.registration).toEqual({ dynamic: true, metadataDocuments: true, allowPrivateNetworks: false, clientTtlMs: 30 * 86_400_000 });
    expect(as.consent.rememberForMs).toBe(30 * 86_400_000);
    expect(as.grants[1]).toEqual({ scopes: ['todo:write', 'todo:admin'], when: { claims: { groups: 'todo-admins' } } });
  });

  it('github needs no issuer: its endpoints and numeric id are the preset', async () => {
    const config = await load(EXAMPLE.replace(/ {4}preset: entra\n {4}issuer: .*\n/, '    preset: github\n').replace('    scopes: [openid, profile, email]\n', ''));
    expect(config.authorizationServer!.upstream).toMatchObject({
      preset: 'github',
      authorizationEndpoint: 'https://github.com/login/oauth/authorize',
      tokenEndpoint: 'https://github.com/login/oauth/access_token',
      userinfoEndpoint: 'https://api.github.com/user',
      subjectClaim: 'id',
      scopes: ['read:user', 'user:email'],
    });
  });

  it.each([
    ['an issuer off publicUrl', ['  issuer: https://mcp.example.com', '  issuer: https://elsewhere.example'], /gateway.yaml:3:\d+: .*must be on publicUrl's origin/],
    ["Entra's multi-tenant issuer", ['0b5d8b5e-3d3c-4c8a-9f7e-1d1e4f3a2b6c', 'common'], /gateway.yaml:7:\d+: preset entra needs a tenant's issuer/],
    ['plain http to the IdP', ['https://login.microsoftonline.com', 'http://login.microsoftonline.com'], /gateway.yaml:7:\d+: .*must be an https URL/],
    ['a missing secret file', ['clientSecretFile: idp-client-secret', 'clientSecretFile: nowhere'], /gateway.yaml:9:\d+: cannot read authorizationServer.upstream.clientSecretFile 'nowhere'/],
    ['two secrets', ['clientSecretFile: idp-client-secret', 'clientSecretFile: idp-client-secret\n    clientSecret: x'], /needs exactly one of clientSecret and clientSecretFile/],
    ['a public signing key', ['file: as-keys.jwks', 'file: public.jwks'], /gateway.yaml:4:\d+: signingKeys.file: key 0 is a public key/],
    ['a short RSA key and a repeated kid', ['file: as-keys.jwks', 'file: small.jwks'], /key 1 repeats the kid 'a'/],
    ['an encryption key of the wrong size', ['tokenEncryptionKeyFile: idp-token-key', 'tokenEncryptionKeyFile: short-key'], /32 random bytes/],
    ['a client id that is a URL', ['clientId: desktop-app', 'clientId: https://app.example/c.json'], /name Client ID Metadata Documents/],
    ['a remote http redirect URI', ['"http://127.0.0.1/callback"', '"http://app.example/callback"'], /redirect URI 'http:\/\/app.example\/callback' must use https/],
    ['a zero lifetime', ['accessTokenTtl: 10m', 'accessTokenTtl: 0s'], /authorizationServer.tokens.accessTokenTtl must be longer than 0/],
    ['a carried claim the gateway sets itself', ['refreshTokenTtl: 30d }', 'refreshTokenTtl: 30d, claims: [groups, sub] }'], /'sub' is a claim the gateway sets in its own tokens/],
    ['no grants', [/ {2}grants:[^]*?(?=routes:)/, ''], /missing required key 'grants'/],
    ['an unknown key', ['  tokens:', '  token:'], /unknown key 'token' in authorizationServer \(did you mean 'tokens'\?\)/],
    ['a route under its endpoints', ['    path: /mcp', '    path: /oauth/mcp'], /collides with the authorization server's endpoints/],
    ['its own issuer in issuers too', ['authorizationServer:\n', 'issuers: [{ issuer: https://mcp.example.com }]\nauthorizationServer:\n'], /also listed in issuers/],
    ['the 2025-03-26 metadata compatibility as well', ['authorizationServer:\n', 'authorizationServerMetadata: { mode: serve }\nauthorizationServer:\n'], /authorizationServer and authorizationServerMetadata both serve/],
  ] as const)('refuses %s with a located problem', async (_, [from, to], expected) => {
    const found = await problems(EXAMPLE.replace(from, to));
    expect(found.join('\n')).toMatch(expected);
  });

  it('without it, issuers are required as before', async () => {
    expect((await problems(EXAMPLE.replace(/authorizationServer:[^]*?(?=routes:)/, ''))).join('\n')).toMatch(/missing required key 'issuers'/);
  });

  it('a reload applies every authorizationServer change (new signing keys included) and names no restart-only key', async () => {
    const started = await load(EXAMPLE);
    await writeFile(join(dir, 'rotated.jwks'), JSON.stringify({ keys: [privateJwk('newer'), privateJwk('new')] }));
    const next = await load(EXAMPLE.replace('file: as-keys.jwks', 'file: rotated.jwks').replace('accessTokenTtl: 10m', 'accessTokenTtl: 5m'));
    const { config, keptAsStarted } = settleReload(started, next);
    expect(keptAsStarted).toEqual([]);
    expect(config.authorizationServer!.signingKeys!.map((k) => k.kid)).toEqual(['newer', 'new']);
    expect(config.authorizationServer!.tokens.accessTokenTtlMs).toBe(300_000);
  });
});
