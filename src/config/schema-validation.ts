import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { ConfigProblem } from './problems.js';
import { pointerToPath, type YamlSource } from './yaml-source.js';

// verbose: errors carry their schema, whose `description` makes the message readable.
const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: false, verbose: true });

/**
 * A checker that reports problems located in the YAML. The schema is compiled once, on first
 * use, not when the module loads: compiling costs about a hundred milliseconds, which commands
 * that never check that kind of file (`--help`, or the gateway itself for policy test files)
 * should not pay.
 */
export function schemaChecker(schema: object): (source: YamlSource) => ConfigProblem[] {
  let validate: ValidateFunction | undefined;
  return (source) => {
    validate ??= ajv.compile(schema);
    if (validate(source.value)) return [];
    return dedupe(collapseAlternatives(validate.errors ?? []).map((e) => toProblem(source, e)));
  };
}

/**
 * A value that matches none of a `oneOf`'s branches produces one error per branch ("must be
 * array", "must be 'deny'"). When a branch got as far as the value's contents (a bad scope in a
 * list), that deeper error is the real one; otherwise the `oneOf` alone, described by its schema.
 */
function collapseAlternatives(errors: ErrorObject[]): ErrorObject[] {
  const alternatives = errors.filter((e) => e.keyword === 'oneOf');
  const dropped = new Set<ErrorObject>();
  for (const alt of alternatives) {
    const deeper = errors.some((e) => e.instancePath.startsWith(`${alt.instancePath}/`));
    for (const e of errors) if (e.instancePath === alt.instancePath && (e !== alt || deeper)) dropped.add(e);
  }
  return errors.filter((e) => !dropped.has(e));
}

function toProblem(source: YamlSource, error: ErrorObject): ConfigProblem {
  const path = pointerToPath(error.instancePath);
  const where = path.length === 0 ? 'top level' : path.join('.');
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String((error.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys((error.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const suggestion = closest(key, known);
      return source.problemAt([...path, key], `unknown key '${key}' in ${where}${suggestion ? ` (did you mean '${suggestion}'?)` : ''}`, { atKey: true });
    }
    case 'required': {
      const key = String((error.params as { missingProperty: string }).missingProperty);
      return source.problemAt(path, `${where}: missing required key '${key}'`);
    }
    case 'enum':
      return source.problemAt(
        path,
        `${where} must be one of ${((error.params as { allowedValues: unknown[] }).allowedValues).map((v) => JSON.stringify(v)).join(', ')}`,
      );
    case 'const':
      return source.problemAt(path, `${where} must be ${JSON.stringify((error.params as { allowedValue: unknown }).allowedValue)}`);
    case 'oneOf':
      return source.problemAt(path, `${where} must be ${describe(error) ?? 'one of the allowed forms'}`);
    case 'pattern':
      return source.problemAt(path, `${where} has an invalid value${describePattern(error)}`);
    default:
      return source.problemAt(path, `${where} ${error.message ?? 'is invalid'}`);
  }
}

function describe(error: ErrorObject): string | undefined {
  return (error.parentSchema as { description?: string } | undefined)?.description;
}

function describePattern(error: ErrorObject): string {
  const description = describe(error);
  return description ? ` (${description})` : ` (must match ${(error.params as { pattern: string }).pattern})`;
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.line}:${p.col}:${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The known key a typo most likely meant: within a couple of edits, else none (no wild guesses). */
function closest(typo: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(typo.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(typo.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

/** Damerau-Levenshtein (optimal string alignment): a swapped pair of letters is one edit. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = value;
    }
  }
  return rows[a.length]![b.length]!;
}
