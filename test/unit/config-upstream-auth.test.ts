import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportPKCS8, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { staticCredentialValue } from '../../src/config/upstream-auth-section.js';
import fc from 'fast-check';
import { configProblems } from '../support/config-fixtures.js';

/** routes[].upstreamAuth (issue 26): what loads, and every rule a config can break, at its line. */
let dir: string;
const file = () => join(dir, 'gateway.yaml');
const KEY = randomBytes(32);

/** A config whose one route has `section` (lines indented 6) under upstreamAuth: the section starts on line 9. */
const configWith = (section: string, options: { head?: string; issuers?: string; routeExtra?: string } = {}) => `${options.head ?? ''}issuers:
${options.issuers ?? '  - { issuer: "https://idp.example.com" }'}
routes:
  - name: todo
    path: /mcp
    upstream: "http://127.0.0.1:9500/mcp"
    policy: p.yaml
${options.routeExtra ?? ''}    upstreamAuth:
${section}
`;
const load = (section: string, options?: Parameters<typeof configWith>[1]) => parseConfig(file(), configWith(section, options));
const problems = async (section: string, options?: Parameters<typeof configWith>[1]) => (await configProblems(file(), configWith(section, options))).map((p) => `${p.line}:${p.col} ${p.message}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-gw-upauth-config-'));
  await writeFile(join(dir, 'p.yaml'), 'scopes: []\n');
  await writeFile(join(dir, 'api-key'), 'the-key\n');
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'split'), 'the\r\nkey');
  await writeFile(join(dir, 'secret'), 'client-secret\n');
  await writeFile(join(dir, 'cache-key'), `${KEY.toString('base64')}\n`);
  await writeFile(join(dir, 'cache-key-url'), KEY.toString('base64url'));
  await writeFile(join(dir, 'short-key'), randomBytes(16).toString('base64'));
  await writeFile(join(dir, 'ec.pem'), await exportPKCS8((await generateKeyPair('ES256', { extractable: true })).privateKey));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('routes[].upstreamAuth loads', () => {
  it('static: the header, the file (absolute) and the prefix; the value is not in the config', async () => {
    const config = await load('      static: { header: authorization, valueFile: api-key, prefix: "Bearer " }');
    expect(config.routes[0]!.upstreamAuth).toEqual({ mode: 'static', header: 'authorization', valueFile: join(dir, 'api-key'), prefix: 'Bearer ' });
    expect(JSON.stringify(config)).not.toContain('the-key');
  });

  it('tokenExchange: defaults, the one trusted issuer implied, the secret read without its newline', async () => {
    const config = await load('      tokenExchange: { clientId: gw, clientSecretFile: secret, audience: api, scopes: [read, write] }');
    expect(config.routes[0]!.upstreamAuth).toEqual({
      mode: 'tokenExchange',
      preset: 'rfc8693',
      issuer: 'https://idp.example.com',
      clientId: 'gw',
      clientAuth: { method: 'client_secret_basic', secret: 'client-secret' },
      audience: 'api',
      scopes: ['read', 'write'],
      files: [join(dir, 'secret')],
    });
  });

  it('tokenExchange: private_key_jwt, Entra on-behalf-of, a cache key in base64 or base64url', async () => {
    const config = await load(
      '      tokenExchange: { issuer: "https://idp.example.com", tokenEndpoint: "https://idp.example.com/token", clientId: gw, privateKeyFile: ec.pem, algorithm: ES256, keyId: k1, preset: entra-obo, scopes: [api://up/.default], cacheKeyFile: cache-key }',
      { head: 'store: { type: redis, url: "redis://127.0.0.1:6379" }\n' },
    );
    expect(config.routes[0]!.upstreamAuth).toMatchObject({
      preset: 'entra-obo',
      tokenEndpoint: 'https://idp.example.com/token',
      clientAuth: { method: 'private_key_jwt', algorithm: 'ES256', keyId: 'k1', privateKey: expect.stringContaining('BEGIN PRIVATE KEY') },
      cacheKey: KEY.toString('base64url'),
      files: [join(dir, 'ec.pem'), join(dir, 'cache-key')],
    });
    const url = await load('      tokenExchange: { clientId: gw, clientSecretFile: secret, cacheKeyFile: cache-key-url }');
    expect(url.routes[0]!.upstreamAuth).toMatchObject({ cacheKey: KEY.toString('base64url') });
  });
});

describe('routes[].upstreamAuth problems, at their line', () => {
  it('takes exactly one mode', async () => {
    expect(await problems('      static: { header: x-api-key, valueFile: api-key }\n      tokenExchange: { clientId: gw, clientSecretFile: secret }')).toEqual([
      '10:22 routes.0.upstreamAuth takes exactly one mode: static, tokenExchange, idpToken or connectedAccount',
    ]);
    expect(await problems('      {}')).toEqual(['9:7 routes.0.upstreamAuth takes exactly one mode: static, tokenExchange, idpToken or connectedAccount']);
    expect(await problems('      tokenExchange: { clientId: gw, clientSecretFile: secret, scope: [a] }')).toEqual([
      "9:64 unknown key 'scope' in routes.0.upstreamAuth.tokenExchange (did you mean 'scopes'?)",
    ]);
  });

  it('static: a header of its own, a readable file holding a header-safe value', async () => {
    for (const header of ['mcp-session-id', 'x-forwarded-for', 'accept', 'x-request-id', 'traceparent']) {
      expect(await problems(`      static: { header: ${header}, valueFile: api-key }`)).toEqual([
        `9:25 '${header}' is a header the gateway forwards for MCP or sets itself: the credential needs one of its own`,
      ]);
    }
    expect(await problems('      static: { header: x-api-key, valueFile: api-key }', { routeExtra: '    forwardHeaders: [x-api-key]\n' })).toEqual([
      "10:25 'x-api-key' is also in forwardHeaders: a client could send its own",
    ]);
    expect(await problems('      static: { header: x-sub, valueFile: api-key }', { routeExtra: '    identityHeaders: { subject: x-sub }\n' })).toEqual([
      "10:25 'x-sub' is already an identity header",
    ]);
    expect((await problems('      static: { header: content-type, valueFile: api-key }'))[0]).toMatch(/^9:25 routes\.0\.upstreamAuth\.static\.header has an invalid value/);
    expect(await problems('      static: { header: x-api-key, valueFile: missing }')).toEqual([expect.stringMatching(/^9:47 cannot read routes\.0\.upstreamAuth\.static\.valueFile 'missing': ENOENT/)]);
    expect(await problems('      static: { header: x-api-key, valueFile: empty }')).toEqual(["9:47 the credential in 'empty' is empty"]);
    expect(await problems('      static: { header: x-api-key, valueFile: split }')).toEqual([
      "9:47 the credential in 'split' holds characters a header value cannot carry (only visible ASCII, inner spaces, one trailing newline)",
    ]);
  });

  it('tokenExchange: one client authentication, with only its own settings', async () => {
    expect(await problems('      tokenExchange: { clientId: gw }')).toEqual(['9:22 routes.0.upstreamAuth.tokenExchange needs exactly one of clientSecretFile and privateKeyFile']);
    expect(await problems('      tokenExchange: { clientId: gw, clientSecretFile: secret, privateKeyFile: ec.pem, algorithm: ES256 }')).toEqual([
      '9:80 routes.0.upstreamAuth.tokenExchange needs exactly one of clientSecretFile and privateKeyFile',
    ]);
    expect(await problems('      tokenExchange: { clientId: gw, privateKeyFile: ec.pem, algorithm: ES256, authMethod: client_secret_post }')).toEqual([
      '9:92 authMethod applies to clientSecretFile (privateKeyFile authenticates with private_key_jwt)',
    ]);
    expect(await problems('      tokenExchange: { clientId: gw, clientSecretFile: secret, keyId: k1 }')).toEqual(['9:71 keyId applies only with privateKeyFile']);
    expect(await problems('      tokenExchange: { clientId: gw, privateKeyFile: ec.pem }')).toEqual([
      expect.stringMatching(/^9:54 routes\.0\.upstreamAuth\.tokenExchange\.privateKeyFile 'ec\.pem' is not a PKCS#8 PEM private key for RS256/),
    ]);
  });

  it("tokenExchange: a token only ever goes to its own issuer's endpoint, over https", async () => {
    const two = '  - { issuer: "https://idp.example.com" }\n  - { issuer: "https://other.example.com" }';
    expect(await problems('      tokenExchange: { clientId: gw, clientSecretFile: secret }', { issuers: two })).toEqual([
      "10:22 routes.0.upstreamAuth.tokenExchange needs issuer: route 'todo' accepts tokens from several issuers, and a token is only ever sent to the IdP that issued it",
    ]);
    expect(await problems('      tokenExchange: { issuer: "https://elsewhere.example.com", clientId: gw, clientSecretFile: secret }')).toEqual([
      "9:32 routes.0.upstreamAuth.tokenExchange.issuer 'https://elsewhere.example.com' is not an issuer route 'todo' accepts tokens from",
    ]);
    expect(await problems('      tokenExchange: { tokenEndpoint: "http://idp.example.com/token", clientId: gw, clientSecretFile: secret }')).toEqual([
      "9:39 tokenEndpoint 'http://idp.example.com/token' must be an https URL (plain http only on loopback)",
    ]);
    // Positive control: naming the issuer settles it.
    await expect(load('      tokenExchange: { issuer: "https://other.example.com", clientId: gw, clientSecretFile: secret }', { issuers: two })).resolves.toBeDefined();
  });

  it('tokenExchange: entra-obo names the upstream by scope; Redis needs a 32-byte cache key', async () => {
    expect(await problems('      tokenExchange: { clientId: gw, clientSecretFile: secret, preset: entra-obo, audience: api }')).toEqual([
      '9:72 preset entra-obo needs scopes (e.g. api://<upstream app>/.default)',
      '9:93 audience does not apply to preset entra-obo: name the upstream in scopes',
    ]);
    const redis = { head: 'store: { type: redis, url: "redis://127.0.0.1:6379" }\n' };
    expect(await problems('      tokenExchange: { clientId: gw, clientSecretFile: secret }', redis)).toEqual([
      "10:22 routes.0.upstreamAuth.tokenExchange needs cacheKeyFile with store type 'redis': replicas share exchanged tokens only under one key",
    ]);
    expect(await problems('      tokenExchange: { clientId: gw, clientSecretFile: secret, cacheKeyFile: short-key }', redis)).toEqual([
      "10:78 routes.0.upstreamAuth.tokenExchange.cacheKeyFile 'short-key' must hold 32 random bytes in base64 (openssl rand -base64 32)",
    ]);
  });
});

describe('staticCredentialValue', () => {
  it('drops one trailing newline, keeps the prefix, refuses what a header cannot carry', () => {
    expect(staticCredentialValue('abc\n', 'Bearer ')).toEqual({ value: 'Bearer abc' });
    expect(staticCredentialValue('abc\r\n', '')).toEqual({ value: 'abc' });
    expect(staticCredentialValue('abc\n\n', '')).toHaveProperty('problem');
    expect(staticCredentialValue(' abc', '')).toHaveProperty('problem');
    expect(staticCredentialValue('\n', 'Bearer ')).toEqual({ problem: 'is empty' });
  });

  it('never lets a value through that could split or end the request head', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.constantFrom('', 'Bearer ', 'Token '), (text, prefix) => {
        const checked = staticCredentialValue(text, prefix);
        if ('problem' in checked) return;
        expect(checked.value).not.toMatch(/[\r\n\0]/);
        expect(checked.value).toBe(checked.value.trim());
        expect(checked.value.startsWith(prefix)).toBe(true);
      }),
    );
  });
});
