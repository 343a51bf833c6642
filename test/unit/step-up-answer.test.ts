import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { Refusal } from '../../src/errors.js';
import { answersStepUpWithError } from '../../src/http/pipeline/refusals.js';
import { renderRefusal } from '../../src/http/refusal.js';
import { stepUpAsError } from '../../src/policy/enforce.js';

const principal = (clientId?: string): Principal => ({ issuer: 'https://idp', subject: 's', clientId, scopes: new Set(['a']), expiresAt: 0, claims: {} });

describe('step-up answered as an error', () => {
  it('applies to every client, or only to listed ones, and never with answer: challenge', () => {
    expect(answersStepUpWithError({ answer: 'challenge' }, principal('bot'))).toBe(false);
    expect(answersStepUpWithError({ answer: 'error' }, principal())).toBe(true);
    expect(answersStepUpWithError({ answer: 'error', clients: ['bot'] }, principal('bot'))).toBe(true);
    expect(answersStepUpWithError({ answer: 'error', clients: ['bot'] }, principal('other'))).toBe(false);
    expect(answersStepUpWithError({ answer: 'error', clients: ['bot'] }, principal())).toBe(false);
  });

  it('keeps the request ids and batch shape, and carries the scopes in data, without a challenge', () => {
    const stepUp = new Refusal('insufficient_scope', 'Additional scopes required: b', { scope: ['a', 'b'], missingScopes: ['b'], rpcIds: [1, 2] });
    const rendered = renderRefusal(stepUpAsError(stepUp, 'https://gw/.well-known/oauth-protected-resource/mcp'), { resourceMetadataUrl: 'x', routeScopes: ['a'], isBatch: true });
    expect(rendered.status).toBe(200);
    expect(rendered.headers['www-authenticate']).toBeUndefined();
    const error = { code: -32001, message: 'Insufficient scope: this request needs b', data: { error: 'insufficient_scope', scope: 'a b', missing_scopes: ['b'], resource_metadata: 'https://gw/.well-known/oauth-protected-resource/mcp' } };
    expect(JSON.parse(rendered.body)).toEqual([{ jsonrpc: '2.0', id: 1, error }, { jsonrpc: '2.0', id: 2, error }]);
  });
});
