import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { admittedBefore, rememberAdmission } from '../../src/auth/connection-admission.js';
import { VerifiedTokenCache } from '../../src/auth/token-cache.js';
import { forgetCredentials } from '../../src/auth/forget-credentials.js';

describe('forgetCredentials (a long-lived stream does not keep its token)', () => {
  it('drops Authorization, DPoP and Cookie from the parsed and the raw headers of a real request, and nothing else', async () => {
    const cache = new VerifiedTokenCache();
    const verified = { principal: { issuer: 'i', subject: 's', clientId: undefined, scopes: new Set<string>(), expiresAt: Infinity, claims: {} }, until: Infinity };
    let rememberedUntilForgotten = false;
    const server = createServer((req, res) => {
      void req.headers; // parsed first, as the gateway's handler has by then
      // The connection remembers the token it was admitted with (connection-admission.ts) until the stream forgets it.
      rememberAdmission(req.socket, req.headers.authorization!, 'r', cache, verified);
      const remembered = admittedBefore(req.socket, req.headers.authorization, 'r', cache) === verified;
      forgetCredentials(req);
      rememberedUntilForgotten = remembered && admittedBefore(req.socket, 'Bearer secret-token-value', 'r', cache) === undefined;
      res.end(JSON.stringify({ headers: req.headers, raw: req.rawHeaders }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, {
        headers: { Authorization: 'Bearer secret-token-value', DPoP: 'secret-proof', Cookie: 'sid=secret-cookie', Accept: 'text/event-stream' },
      });
      const text = await response.text();
      expect(text).not.toContain('secret');
      const seen = JSON.parse(text) as { headers: Record<string, string>; raw: string[] };
      expect(seen.headers.accept).toBe('text/event-stream');
      expect(seen.headers.authorization).toBeUndefined();
      expect(seen.raw).toContain('text/event-stream');
      expect(rememberedUntilForgotten).toBe(true);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
