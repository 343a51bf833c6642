import { describe, expect, it } from 'vitest';
import { preflightHeaders } from '../../src/http/cors.js';

describe('CORS preflight', () => {
  it('allows the 2026-07-28 headers in a preflight, and the Mcp-Param-* names asked for', () => {
    const allowed = preflightHeaders('https://app.example', [], 'content-type, Mcp-Param-Repo, x-evil, mcp-param-bad name')['access-control-allow-headers']!;
    expect(allowed.split(', ')).toEqual(expect.arrayContaining(['mcp-method', 'mcp-name', 'mcp-param-repo']));
    expect(allowed).not.toContain('x-evil');
    expect(allowed).not.toContain('bad name');
  });
});
