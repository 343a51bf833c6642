import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { configProblems } from '../support/config-fixtures.js';

/** routes[].upstreamAuth.idpToken and .connectedAccount (issue 26): what loads, and every rule a config can break, at its line. */
let dir: string;
const file = () => join(dir, 'gateway.yaml');

/** The authorization-server facade, keeping the IdP's tokens unless `keepsTokens` is false. */
const facade = (keepsTokens = true) => `authorizationServer:
  upstream:
    issuer: "https://idp.example.com"
    clientId: gw
    clientSecret: s
${keepsTokens ? '    tokenEncryptionKeyFile: seal-key\n' : ''}  grants:
    - scopes: [todo:read]
`;

/**
 * A config whose route `todo` has `section` (lines indented 6) under upstreamAuth; the facade's
 * section takes 8 lines (7 without its key), so with it the section starts on line 15 (14).
 */
const configWith = (section: string, options: { head?: string; routeExtra?: string; secondRoute?: string } = {}) => `${options.head ?? facade()}routes:
  - name: todo
    path: /mcp
    upstream: "http://127.0.0.1:9500/mcp"
    policy: p.yaml
${options.routeExtra ?? ''}    upstreamAuth:
${section}
${options.secondRoute ?? ''}`;
const load = (section: string, options?: Parameters<typeof configWith>[1]) => parseConfig(file(), configWith(section, options));
const problems = async (section: string, options?: Parameters<typeof configWith>[1]) => (await configProblems(file(), configWith(section, options))).map((p) => `${p.line}:${p.col} ${p.message}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-gw-user-modes-'));
  await writeFile(join(dir, 'p.yaml'), 'scopes: []\n');
  await writeFile(join(dir, 'seal-key'), randomBytes(32).toString('base64url'));
  await writeFile(join(dir, 'gh-secret'), 'github-client-secret\n');
  await writeFile(join(dir, 'empty'), '');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('idpToken', () => {
  it('loads as a mode of its own with the facade keeping tokens', async () => {
    const config = await load('      idpToken: {}');
    expect(config.routes[0]!.upstreamAuth).toEqual({ mode: 'idpToken' });
  });

  it('needs the facade, its token encryption key, and a route no other issuer serves', async () => {
    expect(await problems('      idpToken: {}', { head: 'issuers:\n  - { issuer: "https://other.example.com" }\n' })).toEqual([
      '9:17 routes.0.upstreamAuth.idpToken needs authorizationServer: the gateway holds the user\'s credential only for users who log in through it',
      "9:17 routes.0.upstreamAuth.idpToken serves only the authorization server's own tokens, but route 'todo' also accepts tokens from https://other.example.com: set those issuers' routes to leave it out",
    ]);
    expect(await problems('      idpToken: {}', { head: facade(false) })).toEqual([
      '14:17 routes.0.upstreamAuth.idpToken needs authorizationServer.upstream.tokenEncryptionKeyFile: what it keeps for the user is sealed with that key',
    ]);
    // Positive control: the other issuer kept off this route.
    const head = `${facade()}issuers:\n  - { issuer: "https://other.example.com", routes: [other] }\n`;
    const second = '  - { name: other, path: /other, upstream: "http://127.0.0.1:9501/mcp", policy: p.yaml }\n';
    expect((await load('      idpToken: {}', { head, secondRoute: second })).routes[0]!.upstreamAuth).toEqual({ mode: 'idpToken' });
  });

  it('takes no keys', async () => {
    expect(await problems('      idpToken: { header: x-token }')).toEqual(["15:19 unknown key 'header' in routes.0.upstreamAuth.idpToken"]);
  });
});

describe('connectedAccount', () => {
  it('github: the preset fills in the endpoints, the name, the secret in the body and a Bearer header', async () => {
    const config = await load('      connectedAccount: { preset: github, clientId: Iv1.abc, clientSecretFile: gh-secret, scopes: [repo] }');
    expect(config.routes[0]!.upstreamAuth).toEqual({
      mode: 'connectedAccount',
      preset: 'github',
      name: 'GitHub',
      authorizationEndpoint: 'https://github.com/login/oauth/authorize',
      tokenEndpoint: 'https://github.com/login/oauth/access_token',
      clientId: 'Iv1.abc',
      clientAuth: { method: 'client_secret_post', secret: 'github-client-secret' },
      scopes: ['repo'],
      authorizationParameters: {},
      header: 'authorization',
      prefix: 'Bearer ',
      connection: expect.stringMatching(/^[\w-]{22}$/),
      files: [join(dir, 'gh-secret')],
    });
  });

  it('atlassian: its audience and prompt; generic: the endpoints given, Basic, a header of its own without a prefix', async () => {
    const atlassian = await load('      connectedAccount: { preset: atlassian, clientId: a, clientSecretFile: gh-secret, scopes: [read:jira-work, offline_access] }');
    expect(atlassian.routes[0]!.upstreamAuth).toMatchObject({ authorizationParameters: { audience: 'api.atlassian.com', prompt: 'consent' }, tokenEndpoint: 'https://auth.atlassian.com/oauth/token' });
    const generic = await load(
      '      connectedAccount: { authorizationEndpoint: "https://sso.example.com/authorize", tokenEndpoint: "http://127.0.0.1:7000/token", clientId: c, clientSecretFile: gh-secret, header: x-api-token, authorizationParameters: { access_type: offline } }',
    );
    expect(generic.routes[0]!.upstreamAuth).toMatchObject({
      preset: 'generic',
      name: 'sso.example.com',
      clientAuth: { method: 'client_secret_basic' },
      header: 'x-api-token',
      prefix: '',
      authorizationParameters: { access_type: 'offline' },
    });
  });

  it('routes asking the same of the same provider share a connection; other scopes are another', async () => {
    const section = (scopes: string) => `      connectedAccount: { preset: github, clientId: c, clientSecretFile: gh-secret, scopes: [${scopes}] }`;
    const second = (scopes: string) => `  - name: other\n    path: /other\n    upstream: "http://127.0.0.1:9501/mcp"\n    policy: p.yaml\n    upstreamAuth:\n${section(scopes)}\n`;
    const same = await load(section('repo, read:org'), { secondRoute: second('read:org, repo') });
    expect(same.routes[0]!.upstreamAuth).toMatchObject({ connection: (same.routes[1]!.upstreamAuth as { connection: string }).connection });
    const other = await load(section('repo'), { secondRoute: second('read:org') });
    expect((other.routes[0]!.upstreamAuth as { connection: string }).connection).not.toBe((other.routes[1]!.upstreamAuth as { connection: string }).connection);
  });

  it('problems at their line: endpoints, the header, the flow parameters, the secret, the facade', async () => {
    expect(await problems('      connectedAccount: { clientId: c, clientSecretFile: gh-secret }')).toEqual([
      '15:25 routes.0.upstreamAuth.connectedAccount needs authorizationEndpoint (preset generic has none)',
      '15:25 routes.0.upstreamAuth.connectedAccount needs tokenEndpoint (preset generic has none)',
    ]);
    expect(
      await problems('      connectedAccount: { authorizationEndpoint: "http://sso.example.com/authorize", tokenEndpoint: "https://sso.example.com/token#x", clientId: c, clientSecretFile: gh-secret }'),
    ).toEqual([
      "15:50 authorizationEndpoint 'http://sso.example.com/authorize' must be an https URL without a fragment (plain http only on loopback)",
      "15:101 tokenEndpoint 'https://sso.example.com/token#x' must be an https URL without a fragment (plain http only on loopback)",
    ]);
    expect(await problems('      connectedAccount: { preset: github, clientId: c, clientSecretFile: gh-secret, header: mcp-session-id }')).toEqual([
      "15:93 'mcp-session-id' is a header the gateway forwards for MCP or sets itself: the credential needs one of its own",
    ]);
    expect(await problems('      connectedAccount: { preset: github, clientId: c, clientSecretFile: gh-secret, authorizationParameters: { state: x } }')).toEqual([
      "15:110 authorizationParameters may not set 'state': the gateway's flow sets it",
    ]);
    expect(await problems('      connectedAccount: { preset: github, clientId: c, clientSecretFile: empty }')).toEqual([
      "15:74 routes.0.upstreamAuth.connectedAccount.clientSecretFile 'empty' is empty",
    ]);
    expect((await problems('      connectedAccount: { preset: github, clientId: c, clientSecretFile: missing }'))[0]).toMatch(/^15:74 cannot read routes\.0\.upstreamAuth\.connectedAccount\.clientSecretFile 'missing'/);
    expect(await problems('      connectedAccount: { preset: github, clientId: c, clientSecretFile: gh-secret }', { head: facade(false) })).toEqual([
      '14:25 routes.0.upstreamAuth.connectedAccount needs authorizationServer.upstream.tokenEncryptionKeyFile: what it keeps for the user is sealed with that key',
    ]);
    expect(await problems('      connectedAccount: { preset: gitlab, clientId: c, clientSecretFile: gh-secret }')).toEqual([
      '15:35 routes.0.upstreamAuth.connectedAccount.preset must be one of "generic", "github", "atlassian"',
    ]);
  });
});
