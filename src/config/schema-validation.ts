import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { ConfigProblem } from './problems.js';
import { pointerToPath, type YamlSource } from './yaml-source.js';

// verbose: errors carry their schema, whose `description` makes the message readable.
const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: false, verbose: true });

/** How a problem names where it is: `tools.add_todo` by default; a caller may say it better. */
export type PlaceNamer = (path: readonly (string | number)[]) => string;

const dotted: PlaceNamer = (path) => (path.length === 0 ? 'top level' : path.join('.'));

/** A problem the schema found, with the path of the value it is about. */
export interface SchemaProblem extends ConfigProblem {
  readonly path: readonly (string | number)[];
}

export interface SchemaChecker {
  /** Every problem of the file's value, located in the YAML. */
  (source: YamlSource, name?: PlaceNamer): SchemaProblem[];
  /** How many errors a value has: how badly it fits (see YamlSourceOptions.misfit). */
  misfit(value: unknown): number;
}

/**
 * A checker that reports problems located in the YAML. The schema is compiled once, on first
 * use, not when the module loads: compiling costs about a hundred milliseconds, which commands
 * that never check that kind of file (`--help`, or the gateway itself for policy test files)
 * should not pay.
 */
export function schemaChecker(schema: object): SchemaChecker {
  let compiled: ValidateFunction | undefined;
  const validate = (value: unknown) => (compiled ??= ajv.compile(schema))(value);
  const check = (source: YamlSource, name: PlaceNamer = dotted): SchemaProblem[] => {
    if (validate(source.value)) return [];
    return dedupe(groupUnknownKeys(collapseAlternatives(compiled!.errors ?? [], schema)).map((e) => toProblem(source, e, name)));
  };
  return Object.assign(check, { misfit: (value: unknown) => (validate(value) ? 0 : (compiled!.errors?.length ?? 1)) });
}

/** The forms a value may take, for an error found in one of them (see collapseAlternatives). */
const forms = new WeakMap<ErrorObject, string | undefined>();

/** Keywords that fail a value for its type alone: a branch failing only these never matched. */
const TYPE_KEYWORDS = new Set(['type', 'const', 'enum']);

/**
 * A value that matches none of a `oneOf`'s branches produces one error per branch ("must be
 * array", "must be 'deny'"). When the value's type leaves one branch (an object where only the
 * long form is an object), or a branch got as far as the value's contents (a bad scope in a
 * list), that branch's errors are the real ones: `scope:` in a tool rule is an unknown key of the
 * long form, with a suggestion. Otherwise the `oneOf` alone, described by its schema.
 */
function collapseAlternatives(errors: ErrorObject[], root: object): ErrorObject[] {
  const dropped = new Set<ErrorObject>();
  for (const alt of errors.filter((e) => e.keyword === 'oneOf')) {
    const here = errors.filter((e) => e.instancePath === alt.instancePath);
    const deeper = errors.some((e) => e.instancePath.startsWith(`${alt.instancePath}/`));
    const oneBranchByType = branchTypes(alt, root).filter((type) => accepts(type, alt.data)).length === 1;
    const progressed = deeper || (oneBranchByType && here.some((e) => e !== alt && !TYPE_KEYWORDS.has(e.keyword)));
    // An unknown key with no likely meaning still says which forms the value may take.
    if (progressed) for (const e of here) if (e.keyword === 'additionalProperties') forms.set(e, describe(alt));
    for (const e of here) if (e === alt ? progressed : !progressed || TYPE_KEYWORDS.has(e.keyword)) dropped.add(e);
  }
  return errors.filter((e) => !dropped.has(e));
}

/** Keys reported with an error for the first of several unknown keys of one object (see groupUnknownKeys). */
const alsoUnknown = new WeakMap<ErrorObject, string[]>();

/**
 * Several unknown keys in one object, none a likely typo, are one problem at the first of them:
 * a block indented one level too shallow puts all its keys in its parent (a rate limit's
 * `requests`, `per` and `by` become keys of the tool), and that is one mistake.
 */
function groupUnknownKeys(errors: ErrorObject[]): ErrorObject[] {
  const first = new Map<string, ErrorObject>();
  return errors.filter((e) => {
    if (e.keyword !== 'additionalProperties' || suggestionFor(e) !== undefined) return true;
    const earlier = first.get(e.instancePath);
    if (!earlier) return first.set(e.instancePath, e), true;
    alsoUnknown.set(earlier, [...(alsoUnknown.get(earlier) ?? []), unknownKey(e)]);
    return false;
  });
}

function unknownKey(error: ErrorObject): string {
  return String((error.params as { additionalProperty: string }).additionalProperty);
}

function suggestionFor(error: ErrorObject): string | undefined {
  return closest(unknownKey(error), Object.keys((error.parentSchema as { properties?: object } | undefined)?.properties ?? {}));
}

/** The JSON type each branch of a `oneOf` accepts, from its `type`, `const` or `$ref`'s target. */
function branchTypes(alt: ErrorObject, root: object): (string | undefined)[] {
  const branches = (alt.schema as object[] | undefined) ?? [];
  return branches.map((branch) => {
    const resolved = resolveRef(branch as { $ref?: string }, root) as { type?: unknown; const?: unknown };
    if (typeof resolved.type === 'string') return resolved.type;
    return 'const' in resolved ? jsonType(resolved.const) : undefined;
  });
}

function resolveRef(schema: { $ref?: string }, root: object): object {
  if (typeof schema.$ref !== 'string' || !schema.$ref.startsWith('#/')) return schema;
  let target: unknown = root;
  for (const segment of pointerToPath(schema.$ref.slice(1))) target = (target as Record<string | number, unknown> | undefined)?.[segment];
  return typeof target === 'object' && target !== null ? target : schema;
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value === 'number' && Number.isInteger(value) ? 'integer' : typeof value;
}

/** Whether a branch of JSON Schema `type` (undefined: no type said, so any) may take the value. */
function accepts(type: string | undefined, value: unknown): boolean {
  const actual = jsonType(value);
  return type === undefined || type === actual || (type === 'number' && actual === 'integer');
}

function toProblem(source: YamlSource, error: ErrorObject, name: PlaceNamer): SchemaProblem {
  const path = pointerToPath(error.instancePath);
  return { ...located(source, error, path, name(path)), path };
}

function located(source: YamlSource, error: ErrorObject, path: (string | number)[], where: string): ConfigProblem {
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = unknownKey(error);
      const suggestion = suggestionFor(error);
      const form = forms.get(error);
      const hint = suggestion ? ` (did you mean '${suggestion}'?)` : form ? ` (it must be ${form})` : '';
      const keys = [key, ...(alsoUnknown.get(error) ?? [])].map((k) => `'${k}'`);
      const named = keys.length === 1 ? `key ${keys[0]}` : `keys ${keys.slice(0, -1).join(', ')} and ${keys.at(-1)}`;
      return source.problemAt([...path, key], `unknown ${named} in ${where}${hint}`, { atKey: true });
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

function dedupe<T extends ConfigProblem>(problems: T[]): T[] {
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
