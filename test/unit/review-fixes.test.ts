import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { preflightHeaders } from '../../src/http/cors.js';
import { redactArguments } from '../../src/observability/audit.js';
import { IdentitySigner } from '../../src/proxy/identity.js';
import { decodeJwt } from 'jose';

describe('small review fixes', () => {
  it('allows the 2026-07-28 headers in a preflight, and the Mcp-Param-* names asked for', () => {
    const allowed = preflightHeaders('https://app.example', [], 'content-type, Mcp-Param-Repo, x-evil, mcp-param-bad name')['access-control-allow-headers']!;
    expect(allowed.split(', ')).toEqual(expect.arrayContaining(['mcp-method', 'mcp-name', 'mcp-param-repo']));
    expect(allowed).not.toContain('x-evil');
    expect(allowed).not.toContain('bad name');
  });

  it('logs an argument named __proto__ like any other', () => {
    const args = JSON.parse('{"path":"/tmp","__proto__":{"cmd":"rm -rf /"}}') as Record<string, unknown>;
    expect(JSON.stringify(redactArguments(args, []))).toBe('{"path":"/tmp","__proto__":{"cmd":"rm -rf /"}}');
  });

  it('never issues an identity token that is born expired', async () => {
    const signer = await IdentitySigner.create({ algorithm: 'ES256', ttlMs: 60_000 }, 'https://gw.example');
    const nowMs = 1_800_000_000_000;
    const principal: Principal = { issuer: 'https://idp', subject: 'late', clientId: undefined, scopes: new Set(['a']), expiresAt: nowMs / 1000 - 10, claims: {} };
    const claims = decodeJwt(await signer.sign(principal, 'https://upstream.example', nowMs));
    expect(claims.exp! - claims.iat!).toBe(1);
  });
});
