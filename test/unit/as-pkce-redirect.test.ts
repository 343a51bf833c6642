import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { challengeProblem, verifierMatches } from '../../src/authorization-server/pkce.js';
import { matchRedirectUri } from '../../src/authorization-server/redirect-uri.js';
import { redirectUriProblem } from '../../src/config/redirect-uris.js';
import { createHash } from 'node:crypto';

const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');
const verifierChars = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~'.split(''));
const verifiers = fc.array(verifierChars, { minLength: 43, maxLength: 128 }).map((chars) => chars.join(''));

describe('PKCE (RFC 7636)', () => {
  it('the RFC 7636 appendix B example verifies', () => {
    expect(verifierMatches('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')).toBe(true);
  });

  it('any valid verifier matches its own S256 challenge and no other verifier does', () => {
    fc.assert(
      fc.property(verifiers, verifiers, (verifier, other) => {
        expect(verifierMatches(verifier, s256(verifier))).toBe(true);
        if (other !== verifier) expect(verifierMatches(other, s256(verifier))).toBe(false);
      }),
    );
  });

  it('a verifier outside 43..128 unreserved characters never matches, even its own hash', () => {
    for (const verifier of ['a'.repeat(42), 'a'.repeat(129), `${'a'.repeat(42)} `, `${'a'.repeat(42)}+`]) expect(verifierMatches(verifier, s256(verifier))).toBe(false);
  });

  it.each([
    [undefined, 'S256', /code_challenge is required/],
    ['', 'S256', /code_challenge is required/],
    ['E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', undefined, /must be S256/],
    ['E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'plain', /'plain' is not supported/],
    ['too-short', 'S256', /not an S256 challenge/],
  ])('challenge %j with method %j is refused', (challenge, method, why) => {
    expect(challengeProblem(challenge, method)).toMatch(why);
  });

  it('an S256 challenge is accepted', () => {
    expect(challengeProblem('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'S256')).toBeUndefined();
  });
});

describe('redirect URI matching (RFC 9700 §4.1.3, RFC 8252 §7.3)', () => {
  const registered = ['https://app.example/cb', 'http://127.0.0.1/callback', 'http://[::1]:8080/cb?x=1'];

  it('matches exactly, and omitted only when one is registered', () => {
    expect(matchRedirectUri(registered, 'https://app.example/cb')).toBe('https://app.example/cb');
    expect(matchRedirectUri(['https://app.example/cb'], undefined)).toBe('https://app.example/cb');
    expect(matchRedirectUri(registered, undefined)).toBeUndefined();
  });

  it('a loopback http URI matches on any port, with host, path and query unchanged', () => {
    expect(matchRedirectUri(registered, 'http://127.0.0.1:53211/callback')).toBe('http://127.0.0.1:53211/callback');
    expect(matchRedirectUri(registered, 'http://[::1]:1/cb?x=1')).toBe('http://[::1]:1/cb?x=1');
    for (const uri of ['http://127.0.0.1:53211/callback/', 'http://localhost:53211/callback', 'http://127.0.0.1:5@evil.example/callback', 'http://[::1]:1/cb?x=2', 'https://127.0.0.1:1/callback', 'http://127.0.0.1:99999/callback']) {
      expect(matchRedirectUri(registered, uri), uri).toBeUndefined();
    }
  });

  it('no string other than a registered URI (or its loopback port variant) ever matches', () => {
    fc.assert(
      fc.property(fc.constantFrom(...registered), fc.string({ minLength: 1, maxLength: 8 }), fc.nat(40), (uri, noise, at) => {
        const cut = Math.min(at, uri.length);
        const mutated = uri.slice(0, cut) + noise + uri.slice(cut);
        const matched = matchRedirectUri(registered, mutated);
        if (matched !== undefined) {
          const withoutPort = (u: string) => u.replace(/^(http:\/\/(?:127\.0\.0\.1|\[::1\]|localhost)):\d+/, '$1');
          expect(registered.map(withoutPort)).toContain(withoutPort(mutated));
        }
      }),
    );
  });
});

describe('which redirect URIs may be registered', () => {
  it.each([
    ['https://app.example/cb', 'web', undefined],
    ['http://127.0.0.1:3000/cb', 'web', undefined],
    ['http://localhost/cb', 'web', undefined],
    ['http://app.example/cb', 'web', /https/],
    ['https://user:pw@app.example/cb', 'web', /userinfo/],
    ['https://app.example/cb#x', 'web', /fragment/],
    ['com.example.app:/oauth', 'native', undefined],
    ['com.example.app:/oauth', 'web', /only native clients/],
    ['javascript:alert(1)', 'native', /reverse domain name/],
    ['data:text/html,x', 'native', /reverse domain name/],
    ['/relative', 'web', /absolute/],
  ] as const)('%s as %s', (uri, type, expected) => {
    const problem = redirectUriProblem(uri, type);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });
});
