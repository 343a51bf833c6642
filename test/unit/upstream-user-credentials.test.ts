import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readProviderAnswer } from '../../src/authorization-server/connected-provider.js';
import { IdpTokenVault } from '../../src/authorization-server/idp-tokens.js';
import { openTokens, sealTokens } from '../../src/authorization-server/token-sets.js';
import { Refusal } from '../../src/errors.js';
import { renderRefusal } from '../../src/http/refusal.js';
import { parseMcpBody, type McpBody } from '../../src/mcp/message.js';
import { SUPPORTED_PROTOCOL_VERSIONS, type ProtocolVersion } from '../../src/mcp/protocol.js';
import { CONNECT_INPUT_KEY, elicitationAnswer } from '../../src/mcp/url-elicitation.js';
import { MemoryStore } from '../../src/store/memory.js';
import { accountNotConnected } from '../../src/upstream-auth/refusals.js';

/** The pure parts of upstreamAuth idpToken and connectedAccount (issue 26). */

const LINK = { url: 'https://mcp.example.test/oauth/connect?request=abc', elicitationId: '6f1c0f4e-0000-4000-8000-000000000000', message: 'Connect your GitHub account so that todo can act for you' };
const notConnected = () => accountNotConnected(LINK);
const body = (message: Record<string, unknown>, version: ProtocolVersion = '2025-11-25'): McpBody => parseMcpBody(Buffer.from(JSON.stringify({ jsonrpc: '2.0', ...message })), version);
const meta2026 = (capabilities: Record<string, unknown>) => ({ _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': capabilities } });
const CONTEXT = { resourceMetadataUrl: 'https://mcp.example.test/.well-known/oauth-protected-resource/mcp', routeScopes: [] };

describe('an account to connect, in the words of the request', () => {
  it('2025-11-25 and earlier: every request gets URLElicitationRequiredError (-32042) with one URL elicitation, in-band', () => {
    for (const version of ['2025-11-25', '2025-06-18', '2025-03-26'] as const) {
      const refusal = elicitationAnswer(notConnected(), version, body({ id: 1, method: 'initialize', params: {} }, version));
      expect(refusal.code).toBe('url_elicitation_required');
      const rendered = renderRefusal(new Refusal(refusal.code, refusal.message, { ...refusal.details, rpcIds: [1] }), CONTEXT);
      expect(rendered.status).toBe(200);
      expect(rendered.headers['www-authenticate']).toBeUndefined();
      expect(JSON.parse(rendered.body)).toEqual({
        jsonrpc: '2.0',
        id: 1,
        error: { code: -32042, message: 'This request requires more information.', data: { elicitations: [{ mode: 'url', ...LINK }] } },
      });
    }
  });

  it('2026-07-28: an input-required result for tools/call, prompts/get and resources/read declaring URL elicitation; -32021 without it; the refusal for other methods', () => {
    const V = '2026-07-28';
    for (const [method, params] of [['tools/call', { name: 'list_todos' }], ['prompts/get', { name: 'p' }], ['resources/read', { uri: 'todo://1' }]] as const) {
      const asked = elicitationAnswer(notConnected(), V, body({ id: 'a', method, params: { ...params, ...meta2026({ elicitation: { url: {} } }) } }, V));
      const rendered = renderRefusal(new Refusal(asked.code, asked.message, { ...asked.details, rpcIds: ['a'] }), CONTEXT);
      expect(rendered.status).toBe(200);
      expect(JSON.parse(rendered.body)).toEqual({
        jsonrpc: '2.0',
        id: 'a',
        result: { resultType: 'input_required', inputRequests: { [CONNECT_INPUT_KEY]: { method: 'elicitation/create', params: { mode: 'url', message: LINK.message, url: LINK.url } } } },
      });
      const formOnly = elicitationAnswer(notConnected(), V, body({ id: 'b', method, params: { ...params, ...meta2026({ elicitation: { form: {} } }) } }, V));
      expect(formOnly.code).toBe('missing_client_capability');
      expect(renderRefusal(formOnly, CONTEXT).status).toBe(400);
      expect(formOnly.details.data).toEqual({ requiredCapabilities: { elicitation: { url: {} } } });
      expect(formOnly.message).toContain(LINK.url);
    }
    const list = elicitationAnswer(notConnected(), V, body({ id: 'c', method: 'tools/list', params: meta2026({ elicitation: { url: {} } }) }, V));
    expect(list.code).toBe('upstream_account_not_connected');
    expect(renderRefusal(list, CONTEXT).status).toBe(403);
  });

  it('without a request to answer (a notification, GET, DELETE): the refusal, 403, naming the link', () => {
    const refusal = elicitationAnswer(notConnected(), '2025-11-25', body({ method: 'notifications/initialized' }));
    expect(refusal.code).toBe('upstream_account_not_connected');
    expect(elicitationAnswer(notConnected(), '2025-11-25', undefined).code).toBe('upstream_account_not_connected');
    const rendered = renderRefusal(refusal, CONTEXT);
    expect(rendered.status).toBe(403);
    expect(JSON.parse(rendered.body)).toEqual({ jsonrpc: '2.0', error: { code: -32001, message: `${LINK.message}: open ${LINK.url}, then retry`, data: { url: LINK.url, elicitationId: LINK.elicitationId } } });
  });

  it('never turns another refusal into an elicitation, and never answers with a result where the version has none', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SUPPORTED_PROTOCOL_VERSIONS), fc.constantFrom('tools/call', 'tools/list', 'prompts/get', 'resources/read', 'initialize', 'ping'), fc.boolean(), fc.boolean(), (version, method, url, connect) => {
        const params = { name: 'x', uri: 'todo://x', ...meta2026(url ? { elicitation: { url: {} } } : {}) };
        let parsed: McpBody;
        try {
          parsed = body({ id: 1, method, params }, version);
        } catch {
          return; // a method the version removed: refused before any credential is asked
        }
        const given = connect ? notConnected() : new Refusal('upstream_credential_unavailable', 'x', { retryAfterSeconds: 1 });
        const answer = elicitationAnswer(given, version, parsed);
        if (!connect) {
          expect(answer).toBe(given);
          return;
        }
        if (answer.code === 'input_required') expect(version === '2026-07-28' && url && ['tools/call', 'prompts/get', 'resources/read'].includes(method)).toBe(true);
        if (answer.code === 'url_elicitation_required') expect(version).not.toBe('2026-07-28');
      }),
    );
  });
});

describe("a provider's token answer", () => {
  it("reads GitHub's quirks: errors with HTTP 200, `bearer`, expires_in as digits", () => {
    expect(readProviderAnswer(200, { error: 'bad_refresh_token', error_description: 'x' }, 1000)).toEqual({ kind: 'refused', error: 'bad_refresh_token' });
    expect(readProviderAnswer(200, { error: 'incorrect_client_credentials' }, 1000)).toMatchObject({ kind: 'unavailable' });
    expect(readProviderAnswer(400, { error: 'invalid_grant' }, 1000)).toEqual({ kind: 'refused', error: 'invalid_grant' });
    expect(readProviderAnswer(200, { access_token: 'ghu_1', token_type: 'bearer', expires_in: '28800', refresh_token: 'ghr_1', scope: 'repo' }, 1000)).toEqual({
      kind: 'issued',
      tokens: { accessToken: 'ghu_1', refreshToken: 'ghr_1', issuedAt: 1000, expiresAt: 29800, scope: 'repo' },
    });
    expect(readProviderAnswer(200, { access_token: 'gho_1', token_type: 'bearer' }, 1000)).toEqual({ kind: 'issued', tokens: { accessToken: 'gho_1', issuedAt: 1000 } });
    expect(readProviderAnswer(200, { access_token: 'x', token_type: 'mac' }, 1000)).toMatchObject({ kind: 'unavailable' });
    expect(readProviderAnswer(502, undefined, 1000)).toMatchObject({ kind: 'unavailable', why: 'HTTP 502' });
  });

  it('issues only a 200 with a Bearer token a header can carry', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 599 }), fc.jsonValue(), fc.oneof(fc.string(), fc.constant('ghu_ok')), fc.constantFrom('bearer', 'Bearer', 'mac', undefined), (status, extra, token, type) => {
        const answer = readProviderAnswer(status, { ...(typeof extra === 'object' && extra !== null && !Array.isArray(extra) ? extra : {}), access_token: token, token_type: type }, 0);
        if (answer.kind !== 'issued') return;
        expect(status).toBe(200);
        expect(answer.tokens.accessToken).toMatch(/^[\x21-\x7e]+$/);
        expect(type?.toLowerCase()).toBe('bearer');
      }),
    );
  });
});

describe('tokens kept for a user, sealed', () => {
  const key = new Uint8Array(32).fill(3);

  it('open only as what they were sealed as: the kind, the user and the connection', async () => {
    const tokens = { accessToken: 'gho_secret', refreshToken: 'ghr_secret' };
    const sealed = await sealTokens(key, { kind: 'connection', subject: 'idp|alice', connection: 'c1' }, tokens);
    expect(sealed).not.toContain('gho_secret');
    expect(await openTokens(key, { kind: 'connection', subject: 'idp|alice', connection: 'c1' }, sealed)).toEqual(tokens);
    for (const label of [
      { kind: 'connection', subject: 'idp|mallory', connection: 'c1' },
      { kind: 'connection', subject: 'idp|alice', connection: 'c2' },
      { kind: 'idp-tokens', subject: 'idp|alice' },
    ] as const) {
      await expect(openTokens(key, label, sealed)).rejects.toThrow();
    }
    await expect(openTokens(new Uint8Array(32).fill(4), { kind: 'connection', subject: 'idp|alice', connection: 'c1' }, sealed)).rejects.toThrow();
  });

  it("the IdP vault writes back and forgets a user's set, and reads a set another key sealed as absent", async () => {
    const store = new MemoryStore();
    const vault = new IdpTokenVault(store, Buffer.from(key).toString('base64url'));
    await vault.write('idp|alice', { accessToken: 'a1', refreshToken: 'r1', expiresAt: 10 });
    expect(await vault.read('idp|alice')).toEqual({ accessToken: 'a1', refreshToken: 'r1', expiresAt: 10 });
    expect(await new IdpTokenVault(store, Buffer.alloc(32, 9).toString('base64url')).read('idp|alice')).toBeUndefined();
    expect(await vault.claimRefresh('idp|alice', 1_000)).toBe(true);
    expect(await vault.claimRefresh('idp|alice', 1_000)).toBe(false);
    await vault.releaseRefresh('idp|alice');
    expect(await vault.claimRefresh('idp|alice', 1_000)).toBe(true);
    await vault.clear('idp|alice');
    expect(await vault.read('idp|alice')).toBeUndefined();
    await store.close();
  });
});
