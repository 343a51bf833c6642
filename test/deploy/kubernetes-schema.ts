import { resolve } from 'node:path';
import ts from 'typescript';

/** A Kubernetes object as parsed from a manifest, and where it came from (for messages). */
export interface KubernetesObject {
  readonly where: string;
  readonly object: Record<string, unknown>;
}

/**
 * Custom resources' models, by API group: kubernetes-models has the built-in kinds only, and
 * its sibling packages generate theirs from the operators' own CRD schemas.
 */
const CUSTOM_RESOURCE_MODELS: Readonly<Record<string, string>> = {
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

/** `kubernetes-models/<apiVersion>/<kind>` (core is `v1`), or the custom resource package's module. */
function modelModule(object: Record<string, unknown>): string {
  const apiVersion = String(object.apiVersion);
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  return `${CUSTOM_RESOURCE_MODELS[group] ?? 'kubernetes-models'}/${apiVersion}/${String(object.kind)}`;
}

/**
 * Validates one object against the Kubernetes OpenAPI schema of its apiVersion and kind, as
 * bundled by kubernetes-models (custom resources: by their package, see CUSTOM_RESOURCE_MODELS).
 * Returns the problem, or undefined when it is valid. A kind no package knows (a typo, or a
 * custom resource without a model) is a problem too.
 */
export async function schemaProblem(object: Record<string, unknown>): Promise<string | undefined> {
  let module: Record<string, unknown>;
  try {
    module = (await import(modelModule(object))) as Record<string, unknown>;
  } catch {
    return `unknown apiVersion/kind ${String(object.apiVersion)} ${String(object.kind)}`;
  }
  const Model = module[String(object.kind)] as (new (data: unknown) => { validate(): void }) | undefined;
  if (typeof Model !== 'function') return `kubernetes-models has no ${String(object.kind)} in ${String(object.apiVersion)}`;
  try {
    new Model(object).validate();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Fields the schemas do not know. The OpenAPI schemas allow unknown fields, but the API server
 * (kubectl's default strict field validation) refuses them, and a misspelt `livenessProbe` would
 * otherwise pass silently. kubernetes-models' TypeScript interfaces are generated from the same
 * schemas, so each object is type-checked as an object literal of its kind's interface: excess
 * property checks find unknown fields at any depth, and wrong types too.
 */
export function unknownFieldProblems(objects: readonly KubernetesObject[]): string[] {
  // A virtual file inside the repository, so `kubernetes-models` resolves from node_modules.
  const file = resolve('test/deploy/__manifests__.ts');
  const text = objects
    .map((o, index) => `export const doc${index}: import('${modelModule(o.object)}').I${String(o.object.kind)} = ${JSON.stringify(o.object)};`)
    .join('\n');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, language, ...rest) =>
    resolve(name) === file ? ts.createSourceFile(name, text, language) : getSourceFile.call(host, name, language, ...rest);
  host.fileExists = (name) => resolve(name) === file || fileExists.call(host, name);
  host.readFile = (name) => (resolve(name) === file ? text : readFile.call(host, name));
  const program = ts.createProgram([file], options, host);
  const source = program.getSourceFile(file)!;
  return ts.getPreEmitDiagnostics(program, source).map((diagnostic) => {
    const line = diagnostic.start === undefined ? 0 : source.getLineAndCharacterOfPosition(diagnostic.start).line;
    return `${objects[line]?.where ?? '?'}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`;
  });
}
