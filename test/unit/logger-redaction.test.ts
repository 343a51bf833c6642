import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';

/**
 * Credentials are redacted wherever a header bag, a token request's form or a token answer is
 * logged by mistake: the client's token and the upstream credentials the gateway obtains
 * (routes[].upstreamAuth) alike.
 */
function logged(fields: Record<string, unknown>): string {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  createLogger('info', sink).info(fields, 'oops');
  return lines.join('');
}

describe('logger redaction', () => {
  it('hides credentials in header bags, token forms and token answers, and keeps what is not one', () => {
    const line = logged({
      headers: { authorization: 'Bearer client-token', 'x-api-key': 'static-secret', cookie: 'sid=abc', accept: 'application/json' },
      form: { subject_token: 'client-token-2', client_secret: 'gateway-secret', client_assertion: 'signed.assertion', assertion: 'obo-token' },
      answer: { access_token: 'exchanged-token', token_type: 'Bearer' },
      upstream: { credential: 'Bearer exchanged-2' },
      provider: { access_token: 'gho_user', refresh_token: 'ghr_user', id_token: 'id.jwt', code_verifier: 'pkce-verifier' },
      kept: { accessToken: 'idp-access', refreshToken: 'idp-refresh', idToken: 'idp-id', expiresAt: 1 },
    });
    for (const secret of ['client-token', 'static-secret', 'sid=abc', 'gateway-secret', 'signed.assertion', 'obo-token', 'exchanged-token', 'exchanged-2', 'gho_user', 'ghr_user', 'id.jwt', 'pkce-verifier', 'idp-access', 'idp-refresh', 'idp-id']) {
      expect(line).not.toContain(secret);
    }
    // Positive control: the rest of the line is logged.
    expect(JSON.parse(line)).toMatchObject({ headers: { accept: 'application/json', authorization: '[redacted]' }, answer: { token_type: 'Bearer' }, kept: { expiresAt: 1 } });
  });
});
