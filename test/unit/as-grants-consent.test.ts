import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { consentPage, consentHeaders, redirectDestination } from '../../src/authorization-server/consent-page.js';
import { consentCovers, grantableScopes, parseScope, scopesToGrant } from '../../src/authorization-server/grants.js';
import { errorPage, escapeHtml } from '../../src/authorization-server/html.js';
import type { ScopeGrant } from '../../src/config/types.js';

const GRANTS: ScopeGrant[] = [
  { scopes: ['todo:read'] },
  { scopes: ['todo:write', 'todo:admin'], when: { claims: { groups: 'todo-admins' } } },
  { scopes: ['ops:deploy'], when: { claims: { 'org.team': ['ops', 'sre'] }, subjects: ['42'] } },
];

describe('grants: which scopes a user may hold, from IdP claims', () => {
  it('an entry without when grants to everyone; a claims condition matches a value or any element of an array claim', () => {
    expect([...grantableScopes(GRANTS, { subject: '1', claims: {} })]).toEqual(['todo:read']);
    expect([...grantableScopes(GRANTS, { subject: '1', claims: { groups: ['staff', 'todo-admins'] } })]).toEqual(['todo:read', 'todo:write', 'todo:admin']);
    expect([...grantableScopes(GRANTS, { subject: '1', claims: { groups: 'todo-admins-not' } })]).toEqual(['todo:read']);
  });

  it('every part of when must hold: claims by dot path and the subject', () => {
    expect(grantableScopes(GRANTS, { subject: '42', claims: { org: { team: 'sre' } } }).has('ops:deploy')).toBe(true);
    expect(grantableScopes(GRANTS, { subject: '43', claims: { org: { team: 'sre' } } }).has('ops:deploy')).toBe(false);
    expect(grantableScopes(GRANTS, { subject: '42', claims: { org: { team: 'dev' } } }).has('ops:deploy')).toBe(false);
  });

  it('step-up: the granted scopes are (asked ∪ held) ∩ grantable: nothing held is lost, nothing ungrantable is added', () => {
    const scope = fc.constantFrom('a', 'b', 'c', 'd', 'e');
    fc.assert(
      fc.property(fc.uniqueArray(scope), fc.uniqueArray(scope), fc.uniqueArray(scope), (asked, held, allowed) => {
        const grantable = new Set<string>(allowed);
        const granted = scopesToGrant(asked, held, grantable);
        expect(new Set(granted).size).toBe(granted.length);
        for (const s of granted) expect(grantable.has(s)).toBe(true);
        for (const s of [...asked, ...held]) if (grantable.has(s)) expect(granted).toContain(s);
        expect(granted.slice(0, asked.filter((s) => grantable.has(s)).length)).toEqual(asked.filter((s) => grantable.has(s)));
      }),
    );
  });

  it('remembered consent covers a request only when every scope was approved', () => {
    expect(consentCovers(['a', 'b'], ['a'])).toBe(true);
    expect(consentCovers(['a'], ['a', 'b'])).toBe(false);
    expect(consentCovers(undefined, [])).toBe(false);
    expect(parseScope(' a  b a ')).toEqual(['a', 'b']);
  });
});

describe('the consent page', () => {
  const view = (name: string) => ({
    clientId: 'client-1',
    clientName: name,
    redirectUri: 'http://127.0.0.1:7777/cb',
    user: 'alice@example.test',
    scopes: ['todo:read', 'todo:write'],
    newScopes: ['todo:write'],
    requestId: 'req',
    csrfToken: 'tok',
    formAction: '/oauth/consent',
  });

  it('no client name, however written, adds markup: the page has the same tags whatever the name', () => {
    const tags = (html: string) => html.match(/<[^>]*>/g)?.length;
    const reference = tags(consentPage(view('plain')));
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (name) => {
        const html = consentPage(view(name));
        expect(tags(html.replaceAll(escapeHtml(name), 'plain'))).toBe(reference);
        expect(html).toContain(escapeHtml(name));
      }),
    );
    const hostile = consentPage(view('"><script>alert(1)</script><img src=x onerror=alert(2)>'));
    expect(hostile).not.toMatch(/<script|<img/);
  });

  it('names where the answer goes: a host, or an app scheme', () => {
    expect(redirectDestination('https://app.example:8443/cb?x=1')).toBe('app.example:8443');
    expect(redirectDestination('com.example.app:/oauth')).toBe('com.example.app: (an app on this device)');
  });

  it('cannot be framed, runs no script, and its form may post only here and redirect only to the client', () => {
    const headers = consentHeaders('http://127.0.0.1:7777/cb');
    expect(headers['x-frame-options']).toBe('DENY');
    expect(headers['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http://127.0.0.1:7777; frame-ancestors 'none'; base-uri 'none'");
    expect(consentHeaders('com.example.app:/oauth')['content-security-policy']).toContain("form-action 'self' com.example.app:;");
  });

  it("keeps its URL to this origin without making the browser send `Origin: null` with the form's POST", () => {
    // no-referrer would (the same-origin check then refuses every real decision); see the browser test.
    expect(consentHeaders('http://127.0.0.1:7777/cb')['referrer-policy']).toBe('same-origin');
    expect(consentPage(view('App'))).toContain('<meta name="referrer" content="same-origin">');
    expect(errorPage('access_denied', 'no')).toContain('<meta name="referrer" content="no-referrer">');
  });

  it('is accessible without script: a language, headings, a labelled list and group, real buttons', () => {
    const html = consentPage(view('App'));
    expect(html).toContain('<html lang="en">');
    expect(html).toMatch(/<h1>.*<\/h1>/);
    expect(html).toContain('<ul aria-labelledby="scopes">');
    expect(html).toContain('role="group" aria-label="Your decision"');
    expect(html.match(/<button type="submit" name="decision"/g)).toHaveLength(2);
    expect(html).not.toContain('<script');
  });
});
