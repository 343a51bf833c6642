import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import { ALWAYS_REDACTED } from '../../src/config/load.js';
import type { RouteConfig } from '../../src/config/types.js';
import type { McpMessage } from '../../src/mcp/message.js';
import { auditDecisions, redactArguments } from '../../src/observability/audit.js';
import { BatchedLogOutput } from '../../src/observability/log-output.js';
import { createLogger } from '../../src/observability/logger.js';
import type { MessageDecision } from '../../src/policy/enforce.js';

describe('audit: tool-call arguments as logged', () => {
  it('logs an argument named __proto__ like any other', () => {
    const args = JSON.parse('{"path":"/tmp","__proto__":{"cmd":"rm -rf /"}}') as Record<string, unknown>;
    expect(JSON.stringify(redactArguments(args, []))).toBe('{"path":"/tmp","__proto__":{"cmd":"rm -rf /"}}');
  });
});

/**
 * The audit line skips pino's redaction pass (request-lines.ts): what keeps a secret argument
 * out of it is redactArguments alone, so the line as written is checked here.
 */
describe('audit: the line as written', () => {
  const SECRET_KEYS = ['password', 'secret', 'token', 'key', 'authorization', 'credential', 'cookie', 'assertion', 'verifier'];
  // The built-in list, as a route with no audit.redact of its own gets it.
  const route = { name: 'todo', audit: { arguments: true, redact: ALWAYS_REDACTED }, upstreamAuth: undefined } as unknown as RouteConfig;
  const principal: Principal = { issuer: 'https://idp.example', subject: 'alice', clientId: 'agent', scopes: new Set(), expiresAt: 0, claims: { email: 'alice@example.com' } };
  const written = (args: Record<string, unknown>): string => {
    const writes: string[] = [];
    const output = new BatchedLogOutput({ write: (data) => (writes.push(String(data)), true) });
    const message: McpMessage = { kind: 'request', id: 1, method: 'tools/call', policy: { kind: 'tool-call', tool: 'open_pr', arguments: args } };
    auditDecisions(createLogger('info', output), route, 'req-1', principal, [{ message, decision: { effect: 'allow', reason: 'tool-allowed', rule: 'tools["open_pr"]' } as MessageDecision['decision'] }], { status: 200 });
    output.flush();
    return writes.join('');
  };
  // A secret value under a key that names a secret (any case, anywhere in the key), nested anywhere.
  const secretKey = fc.tuple(fc.constantFrom(...SECRET_KEYS), fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), fc.boolean()).map(([k, pre, post, upper]) => `${pre}${upper ? k.toUpperCase() : k}${post}`);
  const secretValue = fc.uuid().map((id) => `s3cr3t-${id}`);

  it('never holds a value kept under a secret-named key, at any depth; other values are there', () => {
    fc.assert(
      fc.property(secretKey, secretValue, fc.array(fc.constantFrom('repo', 'items', 'options'), { maxLength: 3 }), fc.string({ minLength: 1, maxLength: 8 }), (key, value, path, plain) => {
        // Positive control beside the secret: a plain value is logged as given.
        let args: Record<string, unknown> = { [key]: value, title: `plain-${plain}` };
        for (const segment of path) args = { [segment]: args };
        const line = written(args);
        expect(line).not.toContain(value);
        expect(line).toContain('[redacted]');
        expect(JSON.parse(line)).toMatchObject({ event: 'authz', tool: 'open_pr', sub: 'alice' });
        expect(line).toContain(JSON.stringify(`plain-${plain}`).slice(1, -1));
        // Claims are never in it either.
        expect(line).not.toContain('alice@example.com');
      }),
    );
  });
});
