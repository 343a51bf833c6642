import { jwtVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { AuthorizationCodes, type CodeGrant } from '../../src/authorization-server/codes.js';
import { OAuthError } from '../../src/authorization-server/errors.js';
import { SigningKeys } from '../../src/authorization-server/keys.js';
import { RefreshTokens } from '../../src/authorization-server/refresh.js';
import { accessTokenClaims, carriedClaims, issueAccessToken } from '../../src/authorization-server/tokens.js';
import { MemoryStore } from '../../src/store/memory.js';

const FAMILY = { clientId: 'client-a', subject: 'idp|alice', resource: 'https://mcp.example.test/mcp', scopes: ['todo:read', 'todo:write'] };
const refused = async (promise: Promise<unknown>, code: string) => {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(OAuthError);
  expect((error as OAuthError).code).toBe(code);
};

describe('access tokens (RFC 9068)', () => {
  const grant = { issuer: 'https://mcp.example.test', subject: 'idp|alice', resource: 'https://mcp.example.test/mcp', clientId: 'client-a', scopes: ['todo:read'], authTime: 1_700_000_000 };

  it('carry iss, sub, aud = the resource, client_id, the granted scope, iat, exp and jti, nothing else', () => {
    expect(accessTokenClaims(grant, 600_000, 1_700_000_123_456, 'jti-1')).toEqual({
      iss: 'https://mcp.example.test',
      sub: 'idp|alice',
      aud: 'https://mcp.example.test/mcp',
      client_id: 'client-a',
      scope: 'todo:read',
      iat: 1_700_000_123,
      exp: 1_700_000_723,
      jti: 'jti-1',
      auth_time: 1_700_000_000,
    });
  });

  it('are signed at+jwt with the first key, verifiable with the published keys only', async () => {
    const keys = SigningKeys.generate();
    const { token, expiresIn } = await issueAccessToken(keys, grant, 60_000);
    expect(expiresIn).toBe(60);
    expect(decodeProtectedHeader(token)).toMatchObject({ typ: 'at+jwt', alg: 'ES256', kid: keys.current.kid });
    expect(keys.publicJwks.keys.every((k) => !('d' in k))).toBe(true);
    const { payload } = await jwtVerify(token, createLocalJWKSet(keys.publicJwks), { typ: 'at+jwt', audience: grant.resource, issuer: grant.issuer });
    expect(payload.scope).toBe('todo:read');
    await expect(jwtVerify(token, createLocalJWKSet(SigningKeys.generate().publicJwks))).rejects.toThrow();
  });
});

describe('refresh token families (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2)', () => {
  it('rotate: each token works once, and the newest is the one that works next', async () => {
    const tokens = new RefreshTokens(new MemoryStore(), 60_000);
    let { token } = await tokens.start(FAMILY);
    for (let i = 0; i < 5; i++) {
      const rotated = await tokens.rotate(token, 'client-a');
      expect(rotated.token).not.toBe(token);
      expect(rotated.family.scopes).toEqual(FAMILY.scopes);
      token = rotated.token;
    }
  });

  it('a token used twice revokes the family: the newest token fails too', async () => {
    const tokens = new RefreshTokens(new MemoryStore(), 60_000);
    const { token: first } = await tokens.start(FAMILY);
    const { token: second } = await tokens.rotate(first, 'client-a');
    await refused(tokens.rotate(first, 'client-a'), 'invalid_grant');
    await refused(tokens.rotate(second, 'client-a'), 'invalid_grant');
  });

  it('two uses of one token at once: never both succeed, and the family is revoked', async () => {
    for (let round = 0; round < 20; round++) {
      const tokens = new RefreshTokens(new MemoryStore(), 60_000);
      const { token } = await tokens.start(FAMILY);
      const results = await Promise.allSettled([tokens.rotate(token, 'client-a'), tokens.rotate(token, 'client-a')]);
      const won = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ token: string }>[];
      expect(won.length).toBeLessThanOrEqual(1);
      for (const winner of won) await refused(tokens.rotate(winner.value.token, 'client-a'), 'invalid_grant');
    }
  });

  it("another client's use is refused and revokes nothing; a refused check leaves the token as it was", async () => {
    const tokens = new RefreshTokens(new MemoryStore(), 60_000);
    const { token } = await tokens.start(FAMILY);
    await refused(tokens.rotate(token, 'client-b'), 'invalid_grant');
    await expect(tokens.rotate(token, 'client-a', () => { throw new OAuthError('invalid_scope', 'no'); })).rejects.toMatchObject({ code: 'invalid_scope' });
    expect((await tokens.rotate(token, 'client-a')).token).toBeTruthy();
  });

  it('malformed and forged tokens are unknown, and revocation takes the family', async () => {
    const tokens = new RefreshTokens(new MemoryStore(), 60_000);
    const { token, familyId } = await tokens.start(FAMILY);
    for (const forged of ['', 'x', `${familyId}.${'A'.repeat(43)}`.replace(familyId, 'B'.repeat(24))]) await refused(tokens.rotate(forged, 'client-a'), 'invalid_grant');
    expect(await tokens.revoke(token, 'client-b')).toBe('other-client');
    expect(await tokens.revoke(token, 'client-a')).toBe('revoked');
    await refused(tokens.rotate(token, 'client-a'), 'invalid_grant');
    expect(await tokens.revoke(token, 'client-a')).toBe('unknown');
  });
});

describe('authorization codes', () => {
  const grant: CodeGrant = { clientId: 'c', redirectUri: 'https://app.example/cb', codeChallenge: 'x'.repeat(43), resource: 'r', scopes: ['a'], subject: 's', authTime: 1 };

  it('are single use even when redeemed twice at once, and a replay revokes what the first redemption issued', async () => {
    const codes = new AuthorizationCodes(new MemoryStore());
    const code = await codes.issue(grant);
    const revoked: string[] = [];
    const revoke = async (family: string) => void revoked.push(family);
    const results = await Promise.allSettled([codes.redeem(code, revoke), codes.redeem(code, revoke)]);
    const won = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Awaited<ReturnType<AuthorizationCodes['redeem']>>>[];
    expect(won).toHaveLength(1);
    await won[0]!.value.issued('family-1');
    await refused(codes.redeem(code, revoke), 'invalid_grant');
    expect(revoked).toEqual(['family-1']);
    await refused(codes.redeem('unknown-code', revoke), 'invalid_grant');
  });
});

describe('IdP claims carried in the access tokens (authorizationServer.tokens.claims)', () => {
  it('carries plain values and lists of them, only the named ones, bounded', () => {
    const source = { groups: ['a', 'b', { nested: true }, 7], email: 'x@example.test', tenant: 'acme', profile: { admin: true }, long: 'x'.repeat(300), many: Array.from({ length: 150 }, (_, i) => `g${i}`) };
    const carried = carriedClaims(source, ['groups', 'email', 'profile', 'long', 'many', 'absent']);
    expect(carried).toEqual({ groups: ['a', 'b', 7], email: 'x@example.test', many: Array.from({ length: 100 }, (_, i) => `g${i}`) });
    expect(carried).not.toHaveProperty('tenant');
  });

  it('never lets an IdP claim stand for one the gateway sets', () => {
    const claims = accessTokenClaims(
      { issuer: 'https://gw.example.test', subject: 'idp|alice', resource: 'https://gw.example.test/mcp', clientId: 'c', scopes: ['todo:read'], claims: { iss: 'https://evil.example', sub: 'admin', aud: 'x', scope: 'todo:admin', groups: ['g'] } },
      60_000,
      1_000_000,
      'jti',
    );
    expect(claims).toMatchObject({ iss: 'https://gw.example.test', sub: 'idp|alice', aud: 'https://gw.example.test/mcp', scope: 'todo:read', groups: ['g'] });
  });
});
