import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitHubStandIn, type GitHubStandIn } from '../../dev/github.js';
import { ConnectedProvider } from '../../src/authorization-server/connected-provider.js';
import { ConnectedAccounts } from '../../src/authorization-server/connections.js';
import type { TokenSet } from '../../src/authorization-server/token-sets.js';
import type { Principal } from '../../src/auth/principal.js';
import type { ConnectedAccountUpstreamAuth } from '../../src/config/types.js';
import { isRefusal } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { MemoryStore } from '../../src/store/memory.js';
import { UserTokens, type UserTokenSource } from '../../src/upstream-auth/user-tokens.js';

/**
 * A user's own token renewed across replicas (src/upstream-auth/user-tokens.ts): two gateways'
 * token logic over one store, a connected account's real provider client, and the GitHub
 * stand-in, whose refresh tokens are single use (as GitHub Apps' are). Both replicas need the
 * token renewed at once: one claims the refresh, the other waits for what it writes back.
 * Without the claim, the second refresh would spend a used refresh token and be refused.
 */

const CALLBACK = 'http://127.0.0.1:9/oauth/connect/callback';
const principal: Principal = { issuer: 'http://127.0.0.1:9', subject: 'idp|alice', clientId: 'host', scopes: new Set(), expiresAt: 0, claims: {} };

describe('a user token renewed by two replicas at once', () => {
  let github: GitHubStandIn;
  let provider: ConnectedProvider;

  beforeAll(async () => {
    github = await startGitHubStandIn({ clientId: 'gh-app', clientSecret: 'gh-secret', callbackUrl: CALLBACK, users: [{ id: 1, login: 'alice-gh' }], expiringTokens: { accessTokenTtlSeconds: 3600 } });
    const config: ConnectedAccountUpstreamAuth = {
      mode: 'connectedAccount',
      preset: 'github',
      name: 'GitHub',
      authorizationEndpoint: github.authorizeUrl,
      tokenEndpoint: github.tokenUrl,
      clientId: 'gh-app',
      clientAuth: { method: 'client_secret_post', secret: 'gh-secret' },
      scopes: ['repo'],
      authorizationParameters: {},
      header: 'authorization',
      prefix: 'Bearer ',
      connection: 'c1',
      files: [],
    };
    provider = new ConnectedProvider(config, CALLBACK, 2_000);
  });
  afterAll(() => github?.close());

  /** A real code flow at the stand-in: what the connect page would have kept. */
  const connect = async (): Promise<TokenSet> => {
    const verifier = randomBytes(32).toString('base64url');
    const authorize = await fetch(provider.authorizationUrl('state-1', createHash('sha256').update(verifier).digest('base64url')), { redirect: 'manual' });
    const code = new URL(authorize.headers.get('location')!).searchParams.get('code')!;
    const outcome = await provider.exchangeCode(code, verifier);
    if (outcome.kind !== 'issued') throw new Error(`no tokens: ${JSON.stringify(outcome)}`);
    return outcome.tokens;
  };
  const replica = (store: MemoryStore): { tokens: UserTokens; source: UserTokenSource } => ({
    tokens: new UserTokens({ mode: 'connectedAccount', prefix: 'Bearer ', logger: createLogger('silent'), timeoutMs: 2_000, missing: () => Promise.reject(new Error('missing')) }),
    source: { store: new ConnectedAccounts(store, Buffer.alloc(32, 1).toString('base64url')).slot('c1'), refresh: (token) => provider.refresh(token) },
  });
  const refreshes = () => github.requests.filter((r) => r.params?.grant_type === 'refresh_token').length;

  it('is renewed once: the other replica takes what the first wrote back', async () => {
    const store = new MemoryStore();
    const [a, b] = [replica(store), replica(store)];
    const connected = await connect();
    // Expired as far as the gateway is concerned: it must be renewed before it is sent.
    await a.source.store.write(principal.subject, { ...connected, expiresAt: Math.floor(Date.now() / 1000) });
    const before = refreshes();
    const [first, second] = await Promise.all([a.tokens.current(principal.subject, principal, a.source), b.tokens.current(principal.subject, principal, b.source)]);
    expect(first).toBe(second);
    expect(first).not.toBe(`Bearer ${connected.accessToken}`);
    expect(refreshes()).toBe(before + 1);
    const kept = await a.source.store.read(principal.subject);
    expect(`Bearer ${kept!.accessToken}`).toBe(first);
    expect(kept!.refreshToken).not.toBe(connected.refreshToken);
    await store.close();
  });

  it('positive control: a used refresh token is refused by the provider, and the user is asked to act again', async () => {
    const store = new MemoryStore();
    const a = replica(store);
    const connected = await connect();
    expect(await provider.refresh(connected.refreshToken!)).toMatchObject({ kind: 'issued' });
    await a.source.store.write(principal.subject, { ...connected, expiresAt: Math.floor(Date.now() / 1000) });
    const error = await Promise.resolve(a.tokens.current(principal.subject, principal, a.source)).catch((caught: unknown) => caught);
    expect(error).toEqual(new Error('missing'));
    expect(isRefusal(error)).toBe(false);
    // The refused set is forgotten, not tried again.
    expect(await a.source.store.read(principal.subject)).toBeUndefined();
    await store.close();
  });
});
