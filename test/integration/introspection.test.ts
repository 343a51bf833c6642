import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Introspector, principalFromIntrospection, type IntrospectionConfig, type IntrospectionResponse } from '../../src/auth/introspection.js';
import { PRESETS } from '../../src/auth/presets.js';
import type { IssuerConfig } from '../../src/config/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { MemoryStore } from '../../src/store/memory.js';
import { rejectionOf } from '../support/refusals.js';

const ISSUER = 'https://idp.example.com';
const RESOURCE = 'https://mcp.example.com/mcp';
const NOW = 1_800_000_000;

const issuer = (overrides: Partial<IssuerConfig> = {}): IssuerConfig => ({
  issuer: ISSUER,
  preset: 'generic',
  algorithms: ['RS256'],
  clockToleranceSeconds: 30,
  typ: ['at+jwt'],
  dpop: 'allowed',
  requireClaims: {},
  claims: PRESETS.generic.claims,
  ...overrides,
});

const active = (claims: Record<string, unknown> = {}): IntrospectionResponse => ({
  active: true,
  iss: ISSUER,
  sub: 'alice',
  client_id: 'agent-1',
  aud: RESOURCE,
  scope: 'todo:read todo:write',
  exp: NOW + 600,
  ...claims,
});

describe('introspection responses (RFC 7662 §2.2), pure', () => {
  const decide = (response: IntrospectionResponse, config = issuer()) => principalFromIntrospection(response, config, RESOURCE, NOW, 300);
  const refusal = (response: IntrospectionResponse, config = issuer()) => {
    try {
      decide(response, config);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('expected a refusal');
  };

  it('admits an active token for this resource, with scopes, subject and client from the mapping', () => {
    const principal = decide(active());
    expect(principal).toMatchObject({ issuer: ISSUER, subject: 'alice', clientId: 'agent-1', expiresAt: NOW + 600 });
    expect([...principal.scopes]).toEqual(['todo:read', 'todo:write']);
  });

  it('refuses inactive, foreign, expired, not yet valid, unbound, other-resource, refresh and subject-less tokens', () => {
    expect(refusal({ active: false })).toBe('The access token is not active');
    expect(refusal(active({ iss: 'https://evil.example.com' }))).toBe('The access token issuer is not trusted');
    expect(refusal(active({ exp: NOW - 31 }))).toBe('The access token expired');
    expect(refusal(active({ nbf: NOW + 31 }))).toBe('The access token is not yet valid');
    expect(refusal(active({ aud: undefined }))).toBe('The access token is not for this resource');
    expect(refusal(active({ aud: ['https://other.example.com/mcp'] }))).toBe('The access token is not for this resource');
    expect(refusal(active({ token_type: 'refresh_token' }))).toBe('A refresh token is not an access token');
    expect(refusal(active({ sub: undefined }))).toBe('The access token names no subject');
  });

  it('honours the clock tolerance, configured audiences, and a missing exp (valid for the cache TTL)', () => {
    expect(decide(active({ exp: NOW - 29 })).subject).toBe('alice');
    expect(decide(active({ aud: 'api://mcp' }), issuer({ audiences: ['api://mcp'] })).subject).toBe('alice');
    expect(decide(active({ exp: undefined })).expiresAt).toBe(NOW + 300);
  });
});

describe('Introspector against a real HTTP endpoint', () => {
  let server: Server;
  let endpoint: string;
  const calls: { authorization?: string; form: URLSearchParams }[] = [];
  let answer: (form: URLSearchParams) => { status: number; body: string } = () => ({ status: 200, body: JSON.stringify({ active: false }) });
  const stores: MemoryStore[] = [];

  beforeAll(async () => {
    server = createServer(async (req: IncomingMessage, res) => {
      let text = '';
      for await (const chunk of req) text += chunk;
      const form = new URLSearchParams(text);
      calls.push({ ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), form });
      const { status, body } = answer(form);
      res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  afterEach(async () => {
    calls.length = 0;
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  const introspector = (overrides: Partial<IntrospectionConfig> = {}) => {
    const store = new MemoryStore();
    stores.push(store);
    const config: IntrospectionConfig = { endpoint, clientId: 'gate way', clientSecret: 's3cr:t', authMethod: 'client_secret_basic', cacheTtlMs: 60_000, negativeCacheTtlMs: 10_000, ...overrides };
    return new Introspector(issuer(), config, store, 1_000, createLogger('silent'));
  };

  it('authenticates with client_secret_basic (form-encoded id and secret) and sends the token with a hint', async () => {
    answer = () => ({ status: 200, body: JSON.stringify(active({ exp: Math.floor(Date.now() / 1000) + 600 })) });
    expect((await introspector().introspect('opaque-1')).active).toBe(true);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.authorization).toBe(`Basic ${Buffer.from('gate%20way:s3cr%3At').toString('base64')}`);
    expect(calls[0]!.form.get('token')).toBe('opaque-1');
    expect(calls[0]!.form.get('token_type_hint')).toBe('access_token');
    expect(calls[0]!.form.get('client_secret')).toBeNull();
  });

  it('authenticates with client_secret_post', async () => {
    answer = () => ({ status: 200, body: JSON.stringify({ active: false }) });
    await introspector({ authMethod: 'client_secret_post' }).introspect('opaque-2');
    expect(calls[0]!.authorization).toBeUndefined();
    expect(calls[0]!.form.get('client_id')).toBe('gate way');
    expect(calls[0]!.form.get('client_secret')).toBe('s3cr:t');
  });

  it('caches active results (one call for repeated and concurrent uses) and inactive ones too', async () => {
    answer = (form) => ({ status: 200, body: JSON.stringify(form.get('token') === 'good' ? active({ exp: Math.floor(Date.now() / 1000) + 600 }) : { active: false }) });
    const one = introspector();
    await Promise.all(Array.from({ length: 20 }, () => one.introspect('good')));
    await one.introspect('good');
    await one.introspect('bad');
    await one.introspect('bad');
    expect(calls.map((c) => c.form.get('token'))).toEqual(['good', 'bad']);
  });

  it('keeps junk away from the IdP and the shared store: oversized tokens are refused unasked, inactive answers stay local', async () => {
    answer = () => ({ status: 200, body: JSON.stringify({ active: false }) });
    const store = new MemoryStore();
    stores.push(store);
    const config: IntrospectionConfig = { endpoint, clientId: 'c', clientSecret: 's', authMethod: 'client_secret_basic', cacheTtlMs: 60_000, negativeCacheTtlMs: 10_000 };
    const one = new Introspector(issuer(), config, store, 1_000, createLogger('silent'));
    expect((await one.introspect('x'.repeat(5_000))).active).toBe(false);
    expect(calls).toHaveLength(0);
    for (let i = 0; i < 3; i++) await one.introspect('junk');
    expect(calls).toHaveLength(1);
    expect(await store.setIfAbsent('probe', '1', 1_000)).toBe(true); // the store holds nothing of the junk:
    expect((store as unknown as { entries: Map<string, unknown> }).entries.size).toBe(1);
  });

  it("one issuer's cached answer never stands for another's, even in one shared store", async () => {
    answer = () => ({ status: 200, body: JSON.stringify(active({ iss: undefined, exp: Math.floor(Date.now() / 1000) + 600 })) });
    const store = new MemoryStore();
    stores.push(store);
    const config: IntrospectionConfig = { endpoint, clientId: 'c', clientSecret: 's', authMethod: 'client_secret_basic', cacheTtlMs: 60_000, negativeCacheTtlMs: 10_000 };
    const weak = new Introspector(issuer({ issuer: 'https://weak.example.com' }), config, store, 1_000, createLogger('silent'));
    const strong = new Introspector(issuer({ issuer: 'https://strong.example.com' }), config, store, 1_000, createLogger('silent'));
    await weak.introspect('shared-token');
    await strong.introspect('shared-token');
    expect(calls).toHaveLength(2);
  });

  it('an endpoint that fails or answers garbage is issuer_unavailable (503), not a verdict on the token', async () => {
    for (const reply of [{ status: 500, body: '{}' }, { status: 200, body: 'not json' }, { status: 200, body: '{"active":"yes"}' }]) {
      answer = () => reply;
      expect((await rejectionOf(introspector().introspect('t'))).code).toBe('issuer_unavailable');
    }
  });
});
