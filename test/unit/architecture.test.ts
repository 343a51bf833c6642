import madge from 'madge';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * The layout is the architecture (docs/architecture.md): dependencies point one way, from the
 * command line and the composition root down through the HTTP surface and the request pipeline
 * to the pieces it is made of, and no module imports, even for a type, one that imports it back.
 * Read from the source by madge, type-only imports included.
 */
const SRC = new URL('../../src/', import.meta.url).pathname;

/** What each folder (or module) may never import: anything above it in the layers. */
const FORBIDDEN: readonly { readonly from: RegExp; readonly to: RegExp; readonly why: string }[] = [
  { from: /^(?!cli\.ts|bin\.ts|index\.ts)/, to: /^(cli|gateway)\.ts$/, why: 'only the command line and the package entry use the composition root' },
  { from: /^(?!http\/|gateway\.ts)/, to: /^http\//, why: 'the HTTP surface and the pipeline are the top layer below the composition root' },
  { from: /^http\/(?!pipeline\/|app\.ts)/, to: /^http\/pipeline\//, why: 'the transport helpers in http/ are used by the pipeline, not the other way round' },
  { from: /^http\/pipeline\/stages\//, to: /^http\/pipeline\/stages\//, why: 'stages know the exchange, not each other' },
  { from: /^config\/types\.ts$/, to: /^(?!policy\/types\.ts$)/, why: 'config types are plain data owned by config/' },
  { from: /^mcp\//, to: /^(auth|policy|proxy|ratelimit|observability|config)\//, why: 'MCP parsing and filtering stand on their own' },
  { from: /^policy\//, to: /^(proxy|ratelimit|store|observability)\//, why: 'policy decisions are pure: no I/O' },
  { from: /^auth\//, to: /^(policy|mcp|proxy|ratelimit)\//, why: 'token checks know nothing of what the token is used for' },
  { from: /^store\//, to: /^(auth|policy|mcp|proxy|ratelimit)\//, why: 'the store keeps strings for whoever asks' },
  { from: /^(proxy|ratelimit)\//, to: /^(proxy|ratelimit)\//, why: 'forwarding and budgets are independent of each other' },
  { from: /^cache\//, to: /./, why: 'generic caches depend on nothing of the gateway' },
  { from: /^upstream-auth\//, to: /^(http|proxy|ratelimit|policy|mcp)\//, why: 'upstream credentials stand on config, auth, the store and caches; the pipeline uses them' },
  { from: /^(?!http\/pipeline\/|gateway\.ts|upstream-auth\/)/, to: /^upstream-auth\//, why: 'only the pipeline and the composition root use upstream credentials' },
  {
    from: /^authorization-server\//,
    to: /^(?!(config|auth|store|observability|cache|authorization-server)\/|errors\.ts$)/,
    why: 'the authorization server stands on config, auth, store, observability, cache and errors alone',
  },
  {
    from: /^(http\/pipeline\/|auth\/|policy\/|mcp\/|proxy\/|ratelimit\/|store\/|observability\/|config\/|cache\/|errors\.ts$)/,
    to: /^authorization-server\//,
    why: 'the request pipeline and the layers below it know nothing of the authorization server (its tokens are one more issuer)',
  },
];

describe('dependencies point one way', () => {
  let graph: Record<string, string[]>;
  let circular: string[][];

  beforeAll(async () => {
    const result = await madge(SRC, { fileExtensions: ['ts'], tsConfig: new URL('../../tsconfig.json', import.meta.url).pathname });
    graph = result.obj();
    circular = result.circular();
  }, 60_000);

  it('reads the whole source tree', () => {
    expect(Object.keys(graph)).toEqual(expect.arrayContaining(['gateway.ts', 'http/pipeline/endpoint.ts', 'config/types.ts', 'mcp/message.ts']));
  });

  it('has no import cycle', () => {
    expect(circular).toEqual([]);
  });

  it.each(FORBIDDEN)('$why', ({ from, to }) => {
    const broken = Object.entries(graph).flatMap(([module, imports]) =>
      from.test(module) ? imports.filter((imported) => imported !== module && to.test(imported) && !sameFolderAllowed(module, imported, from, to)).map((imported) => `${module} -> ${imported}`) : [],
    );
    expect(broken).toEqual([]);
  });

  it('the rules catch a violation (a module importing upwards is named)', () => {
    const rule = FORBIDDEN.find((r) => r.why.startsWith('policy decisions'))!;
    const fake = { 'policy/evaluate.ts': ['store/memory.ts'] };
    expect(Object.entries(fake).flatMap(([m, imports]) => (rule.from.test(m) ? imports.filter((i) => rule.to.test(i)) : []))).toEqual(['store/memory.ts']);
  });
});

/** The proxy/ratelimit rule forbids the other folder, not a folder's own modules. */
function sameFolderAllowed(module: string, imported: string, from: RegExp, to: RegExp): boolean {
  if (from.source !== to.source) return false;
  if (from.source.includes('stages')) return false;
  return module.split('/')[0] === imported.split('/')[0];
}
