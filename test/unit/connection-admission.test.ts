import { describe, expect, it, vi } from 'vitest';
import { Authenticator } from '../../src/auth/authenticate.js';
import { forgetAdmission } from '../../src/auth/connection-admission.js';
import { IssuerDirectory } from '../../src/auth/issuers.js';
import type { Principal } from '../../src/auth/principal.js';
import { VerifiedTokenCache } from '../../src/auth/token-cache.js';
import type { IssuerConfig } from '../../src/config/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { MemoryStore } from '../../src/store/memory.js';
import { issuerConfig } from '../support/config-fixtures.js';
import { refusalOf } from '../support/refusals.js';

const ISSUER = 'https://idp.example';
const ROUTE = { name: 'todo', resource: 'https://gw.example/mcp' };
const TOKEN = 'token-alice';
const HEADER = `Bearer ${TOKEN}`;

const alice = (extra: Partial<Principal> = {}): Principal => ({ issuer: ISSUER, subject: 'alice', clientId: 'agent', scopes: new Set(['todo:read']), expiresAt: 2_000, claims: {}, ...extra });

/** An authenticator whose token cache already holds alice's token (as after a first verified request), on a clock the test moves. */
function setUp(options: { issuer?: Partial<IssuerConfig>; principal?: Principal } = {}) {
  const clock = { now: 1_000_000 };
  const cache = new VerifiedTokenCache(10, () => clock.now);
  const authenticator = new Authenticator(new IssuerDirectory([issuerConfig(ISSUER, { jwks: { keys: [] }, ...options.issuer })], 1_000, createLogger('silent')), cache, new MemoryStore());
  cache.set(ROUTE.name, TOKEN, options.principal ?? alice());
  const lookups = vi.spyOn(cache, 'entry');
  return { clock, cache, authenticator, lookups };
}

describe('a connection remembers the token it was last admitted with', () => {
  it('admits the same Authorization header on the same connection without another cache look-up', () => {
    const { authenticator, lookups } = setUp();
    const connection = {};
    const first = authenticator.cachedPrincipal(HEADER, ROUTE, connection);
    expect(first?.subject).toBe('alice');
    expect(lookups).toHaveBeenCalledTimes(1);
    expect(authenticator.cachedPrincipal(HEADER, ROUTE, connection)).toBe(first);
    expect(lookups).toHaveBeenCalledTimes(1);
  });

  it('looks again for another header, another connection, another route, or after forgetting', () => {
    const { authenticator, lookups } = setUp();
    const connection = {};
    authenticator.cachedPrincipal(HEADER, ROUTE, connection);
    expect(authenticator.cachedPrincipal('Bearer token-mallory', ROUTE, connection)).toBeUndefined();
    expect(authenticator.cachedPrincipal(HEADER, ROUTE, {})?.subject).toBe('alice');
    // Verified for "todo" only: another route's audience was never checked.
    expect(authenticator.cachedPrincipal(HEADER, { name: 'admin', resource: 'https://gw.example/admin' }, connection)).toBeUndefined();
    expect(lookups).toHaveBeenCalledTimes(4);
    // The misses did not replace what the connection remembers; forgetting does.
    expect(authenticator.cachedPrincipal(HEADER, ROUTE, connection)?.subject).toBe('alice');
    expect(lookups).toHaveBeenCalledTimes(4);
    forgetAdmission(connection);
    expect(authenticator.cachedPrincipal(HEADER, ROUTE, connection)?.subject).toBe('alice');
    expect(authenticator.cachedPrincipal(HEADER, ROUTE, connection)?.subject).toBe('alice');
    expect(lookups).toHaveBeenCalledTimes(5);
  });

  it('never admits a token past its exp, nor past the cache maximum age', () => {
    const expiring = setUp();
    const connection = {};
    expect(expiring.authenticator.cachedPrincipal(HEADER, ROUTE, connection)?.subject).toBe('alice');
    expiring.clock.now = 2_000_000; // exp 2,000 s
    expect(expiring.authenticator.cachedPrincipal(HEADER, ROUTE, connection)).toBeUndefined();

    const longLived = setUp({ principal: alice({ expiresAt: 1_000_000 }) });
    expect(longLived.authenticator.cachedPrincipal(HEADER, ROUTE, connection)?.subject).toBe('alice');
    longLived.clock.now += 10 * 60_000; // the cache's maximum age: a key the IdP removed stops admitting
    expect(longLived.authenticator.cachedPrincipal(HEADER, ROUTE, connection)).toBeUndefined();
  });

  it('is not honoured by another authenticator (a reload), which checks issuer trust and DPoP rules again', () => {
    const before = setUp();
    const connection = {};
    expect(before.authenticator.cachedPrincipal(HEADER, ROUTE, connection)?.subject).toBe('alice');
    // The reloaded config requires DPoP of this issuer: the remembered admission must not bypass that.
    const after = setUp({ issuer: { dpop: 'required' } });
    const refusal = refusalOf(() => after.authenticator.cachedPrincipal(HEADER, ROUTE, connection));
    expect(refusal).toMatchObject({ code: 'invalid_token', message: 'The access token must be DPoP-bound' });
  });

  it('never remembers a DPoP-bound token: each request needs its own proof', () => {
    const { authenticator, lookups } = setUp({ principal: alice({ confirmationJkt: 'thumbprint' }) });
    const connection = {};
    expect(authenticator.cachedPrincipal(`DPoP ${TOKEN}`, ROUTE, connection)).toBeUndefined();
    expect(authenticator.cachedPrincipal(`DPoP ${TOKEN}`, ROUTE, connection)).toBeUndefined();
    expect(lookups).toHaveBeenCalledTimes(2);
  });
});
