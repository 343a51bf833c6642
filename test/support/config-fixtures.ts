import { PRESETS } from '../../src/auth/presets.js';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError, type ConfigProblem } from '../../src/config/problems.js';
import { ASYMMETRIC_ALGORITHMS, type IssuerConfig } from '../../src/config/types.js';

/** An issuer as the config loader would build it from `{ issuer }` alone (generic preset), plus `extra`. */
export function issuerConfig(issuer: string, extra: Partial<IssuerConfig> = {}): IssuerConfig {
  return {
    issuer,
    preset: 'generic',
    algorithms: [...ASYMMETRIC_ALGORITHMS],
    clockToleranceSeconds: 30,
    typ: ['at+jwt'],
    dpop: 'allowed',
    requireClaims: {},
    claims: PRESETS.generic.claims,
    ...extra,
  };
}

/** The README's minimal contract (one issuer, one route), after `head` (a store section, say). */
export function minimalConfig(options: { head?: string; policy?: string; routeExtra?: string } = {}): string {
  return `${options.head ?? ''}issuers:
  - issuer: https://idp.example.test
routes:
  - name: todo
    path: /mcp
    upstream: http://127.0.0.1:9500/mcp
    policy: ${options.policy ?? 'policies/todo.yaml'}
${options.routeExtra ?? ''}`;
}

/** The problems loading `text` as `file` reports; fails if it loads. */
export async function configProblems(file: string, text: string): Promise<readonly ConfigProblem[]> {
  try {
    await parseConfig(file, text);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError, the config loaded');
}
