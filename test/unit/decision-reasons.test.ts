import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DecisionReason } from '../../src/policy/types.js';

/**
 * The closed set of decision reasons is spoken by logs, metrics, `explain`, policy test files
 * and the docs alike: the test-file schema and docs/policies.md must name every reason the code
 * can give, so a new reason cannot be unusable in a policy test or undocumented.
 */
const EVERY_REASON = {
  'route-scopes-missing': true, 'method-allowed': true, 'tool-allowed': true, 'tool-scopes-missing': true, 'tool-denied': true,
  'tool-unmatched': true, 'resource-allowed': true, 'resource-scopes-missing': true, 'resource-denied': true, 'resource-unmatched': true,
  'resource-uri-invalid': true, 'prompt-allowed': true, 'prompt-scopes-missing': true, 'prompt-denied': true, 'prompt-unmatched': true,
  'method-scopes-missing': true, 'method-denied': true, 'method-unknown': true, 'condition-unmet': true, 'arguments-not-allowed': true,
} satisfies Record<DecisionReason, true>;

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('decision reasons', () => {
  it('the policy-test schema accepts exactly the reasons the code gives', () => {
    const schema = read('schemas/policy-test.schema.json');
    const listed = /"reason"[\s\S]*?"enum":\s*\[([^\]]*)\]/.exec(schema)?.[1];
    expect(JSON.parse(`[${listed}]`).sort()).toEqual(Object.keys(EVERY_REASON).sort());
  });

  it('the policy reference names every reason', () => {
    const readme = read('docs/policies.md');
    const spelled = (reason: string) => readme.includes(`\`${reason}\``) || readme.includes(`\`${reason.replace(/^(tool|resource|prompt)-/, '')}\``);
    expect(Object.keys(EVERY_REASON).filter((reason) => !spelled(reason))).toEqual([]);
  });
});
