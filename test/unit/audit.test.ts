import { describe, expect, it } from 'vitest';
import { redactArguments } from '../../src/observability/audit.js';

describe('audit: tool-call arguments as logged', () => {
  it('logs an argument named __proto__ like any other', () => {
    const args = JSON.parse('{"path":"/tmp","__proto__":{"cmd":"rm -rf /"}}') as Record<string, unknown>;
    expect(JSON.stringify(redactArguments(args, []))).toBe('{"path":"/tmp","__proto__":{"cmd":"rm -rf /"}}');
  });
});
