import { posix } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ListFilter } from '../../src/mcp/list-filter.js';
import { parseMcpBody } from '../../src/mcp/message.js';
import { resourceUriProblem } from '../../src/mcp/resource-uri.js';
import { decideBody, refusalFor } from '../../src/policy/enforce.js';
import { decideRequest, isResourceVisible, mayReadResource, NO_FACTS } from '../../src/policy/evaluate.js';
import { compilePolicy } from '../../src/policy/load.js';
import type { Decision, PolicyRequest } from '../../src/policy/types.js';

/**
 * Issue 23 item 1: a resource URI spelled another way must not reach a denied resource. The
 * policy matches the URI as written, the upstream acts on the URI as it reads it, so for every
 * spelling that a reader maps onto a denied URI, or out of an allowed prefix, the decision must
 * be deny. The readers are the ones upstreams use: the WHATWG URL parser (the MCP SDKs), a path
 * join of the raw text (a file server), and either of them after one percent-decoding.
 */
const POLICY = compilePolicy('p.yaml', {
  scopes: ['r'],
  tools: {},
  resources: {
    'note://private': 'deny',
    'note://private/*': 'deny',
    'note://*': ['r'],
    // file:///private/... matches nothing: denied as unmatched.
    'file:///public/*': ['r'],
  },
});
const GRANTED = new Set(['r']);

const DENIED = ['note://private', 'note://private/x', 'file:///private/x'] as const;
const ALLOWED = ['note://public', 'note://public/x', 'file:///public/x', 'file:///public/a/b'] as const;

// ---------------------------------------------------------------------------------------------
// Readers: what an upstream may act on when given a spelling
// ---------------------------------------------------------------------------------------------

/** The WHATWG parse, without what a server may ignore: fragment and user information. */
function whatwgReading(uri: string): string | undefined {
  try {
    const url = new URL(uri);
    url.hash = '';
    url.username = '';
    url.password = '';
    return url.href;
  } catch {
    return undefined;
  }
}

/**
 * A file server's reading: the raw text after `scheme://authority` joined as a path, `\` a
 * separator, nothing parsed (query and fragment are path characters to it); scheme and host
 * compared case-insensitively (RFC 3986 §3.1, §3.2.2), user information and an empty port ignored.
 */
function pathJoinReading(uri: string): string | undefined {
  const match = /^([^:/?#]+):\/\/([^/\\]*)(.*)$/s.exec(uri);
  if (!match) return undefined;
  const [, scheme, authority, rest] = match;
  const host = authority!.slice(authority!.lastIndexOf('@') + 1).replace(/:$/, '').toLowerCase();
  const path = rest === '' ? '' : posix.normalize(`/${rest!.replaceAll('\\', '/')}`);
  return `${scheme!.toLowerCase()}://${host}${path}`;
}

function decodedOnce(uri: string): string | undefined {
  try {
    return decodeURIComponent(uri);
  } catch {
    return undefined;
  }
}

function readings(uri: string): string[] {
  const decoded = decodedOnce(uri);
  const all = [whatwgReading(uri), pathJoinReading(uri), ...(decoded === undefined ? [] : [whatwgReading(decoded), pathJoinReading(decoded)])];
  return all.filter((reading): reading is string => reading !== undefined);
}

/** The policy above, read independently: the private note and what is under it, and any file outside /public/. */
function isDeniedReading(reading: string): boolean {
  return /^note:\/\/private(?:[/?#]|$)/.test(reading) || (reading.startsWith('file:') && !reading.startsWith('file:///public/'));
}

// ---------------------------------------------------------------------------------------------
// Spellings: mutations a client can make that a reader may undo
// ---------------------------------------------------------------------------------------------

const WHITESPACE_AND_CONTROLS = [' ', '\t', '\n', '\r', '\f', '\v', '\0', '\x1f', '\x7f', '\u00a0', '\u2028', '\u3000'];
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Where the path starts (after scheme and authority). */
function pathStart(uri: string): number {
  const afterScheme = uri.indexOf(':') + 1;
  if (!uri.startsWith('//', afterScheme)) return afterScheme;
  const slash = uri.indexOf('/', afterScheme + 2);
  return slash === -1 ? uri.length : slash;
}

/** A position of a `/` in the path, or the path's end: where a segment can be inserted. */
function segmentBoundary(uri: string, pick: number): number {
  const start = pathStart(uri);
  const boundaries = [uri.length];
  for (let i = start; i < uri.length; i++) if (uri[i] === '/') boundaries.push(i);
  return boundaries[pick % boundaries.length]!;
}

const insertAt = (uri: string, at: number, text: string) => uri.slice(0, at) + text + uri.slice(at);
const hex = (code: number, upper: boolean) => code.toString(16).padStart(2, '0')[upper ? 'toUpperCase' : 'toLowerCase']();

type Mutation = (uri: string, pick: number) => string;

/** Each keeps or makes a spelling that some reader maps onto the URI it came from. */
const MUTATIONS: Record<string, Mutation> = {
  'x/..': (uri, pick) => insertAt(uri, segmentBoundary(uri, pick), '/x/..'),
  './': (uri, pick) => insertAt(uri, segmentBoundary(uri, pick), '/.'),
  '%2e%2e': (uri, pick) => insertAt(uri, segmentBoundary(uri, pick), ['/x/%2e%2e', '/x/%2E%2E', '/x/.%2e', '/x/%2E.'][pick % 4]!),
  '%2E': (uri, pick) => insertAt(uri, segmentBoundary(uri, pick), ['/%2E', '/%2e'][pick % 2]!),
  backslash: (uri, pick) => {
    const slashes = [...uri].flatMap((ch, i) => (ch === '/' ? [i] : []));
    const at = slashes[pick % slashes.length]!;
    return `${uri.slice(0, at)}\\${uri.slice(at + 1)}`;
  },
  whitespace: (uri, pick) => insertAt(uri, pick % (uri.length + 1), WHITESPACE_AND_CONTROLS[pick % WHITESPACE_AND_CONTROLS.length]!),
  'trailing space': (uri, pick) => uri + [' ', '  ', '\t', '\n', ' \r\n'][pick % 5]!,
  'upper-case scheme': (uri, pick) => {
    const colon = uri.indexOf(':');
    const scheme = uri.slice(0, colon);
    const upper = pick % 2 === 0 ? scheme.toUpperCase() : scheme[0]!.toUpperCase() + scheme.slice(1);
    return upper + uri.slice(colon);
  },
  'percent-encoded unreserved': (uri, pick) => {
    const candidates = [...uri].flatMap((ch, i) => (i > uri.indexOf(':') && UNRESERVED.test(ch) ? [i] : []));
    const at = candidates[pick % candidates.length]!;
    return `${uri.slice(0, at)}%${hex(uri.charCodeAt(at), pick % 2 === 0)}${uri.slice(at + 1)}`;
  },
  'empty port': (uri) => insertAt(uri, pathStart(uri), ':'),
  userinfo: (uri, pick) => insertAt(uri, uri.indexOf('//') + 2, ['user@', 'u:p@', '@', 'public@'][pick % 4]!),
  fragment: (uri, pick) => uri + ['#', '#x', '#/../private', '#%2e'][pick % 4]!,
  // A reader that does not split off the query (an SDK template `{+path}` takes it in) resolves these.
  'query of dot segments': (uri, pick) => uri + ['?/..', '?/../../private/x', '?x/../..', '?/./x'][pick % 4]!,
  'upper-case host': (uri, pick) => {
    const start = uri.indexOf('//') + 2;
    const end = pathStart(uri);
    if (end <= start) return insertAt(uri, start, 'LOCALHOST');
    const host = uri.slice(start, end);
    return uri.slice(0, start) + (pick % 2 === 0 ? host.toUpperCase() : host[0]!.toUpperCase() + host.slice(1)) + uri.slice(end);
  },
};

const mutated = (bases: readonly string[]) =>
  fc
    .record({
      base: fc.constantFrom(...bases),
      steps: fc.array(fc.tuple(fc.constantFrom(...Object.keys(MUTATIONS)), fc.nat({ max: 1000 })), { minLength: 1, maxLength: 3 }),
    })
    .map(({ base, steps }) => ({ base, steps: steps.map(([name]) => name), spelling: steps.reduce((uri, [name, pick]) => MUTATIONS[name]!(uri, pick), base as string) }));

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

const read = (uri: string): PolicyRequest => ({ kind: 'resource', method: 'resources/read', uri });
const decide = (request: PolicyRequest): Decision => decideRequest(POLICY, GRANTED, request, NO_FACTS);

/** Every way the gateway decides on a resource URI, for one spelling. */
function decisionsFor(uri: string) {
  return {
    read: decide(read(uri)),
    subscribe: decide({ kind: 'resource', method: 'resources/subscribe', uri }),
    // A 2026-07-28 listen stream that also subscribes to something allowed.
    listen: decide({ kind: 'listen', uris: ['note://public', uri] }),
    listed: isResourceVisible(POLICY, uri),
    listedForPrincipal: isResourceVisible(POLICY, uri, NO_FACTS),
    updateHeard: mayReadResource(POLICY, GRANTED, uri, NO_FACTS),
  };
}

function expectRefused(uri: string): void {
  const decisions = decisionsFor(uri);
  for (const kind of ['read', 'subscribe', 'listen'] as const) expect(decisions[kind].effect, `${kind} of ${JSON.stringify(uri)}`).toBe('deny');
  expect(decisions.listed, `listed ${JSON.stringify(uri)}`).toBe(false);
  expect(decisions.listedForPrincipal).toBe(false);
  expect(decisions.updateHeard, `update about ${JSON.stringify(uri)}`).toBe(false);
}

describe('resource URI spellings (issue 23 item 1)', () => {
  it('the readers are right about the spellings the issue names (sanity check of the oracle)', () => {
    // Node 26's URL parser keeps the slash (`note://private/`), earlier lines drop it: either way a denied reading.
    expect(['note://private', 'note://private/']).toContain(whatwgReading('note://private/..'));
    expect(isDeniedReading(whatwgReading('note://private/..')!)).toBe(true);
    expect(whatwgReading('note://priv\tate')).toBe('note://private');
    expect(whatwgReading('note://private\n')).toBe('note://private');
    expect(whatwgReading('file:///public/%2e%2e/private/x')).toBe('file:///private/x');
    expect(whatwgReading('file:///public\\..\\private\\x')).toBe('file:///private/x');
    expect(pathJoinReading('file:///public/../private/x')).toBe('file:///private/x');
    expect(pathJoinReading(decodedOnce('file:///public/%2e%2e/private/x')!)).toBe('file:///private/x');
    expect(readings('file:///public/x').every((reading) => !isDeniedReading(reading))).toBe(true);
    expect(isDeniedReading('note://private')).toBe(true);
    expect(isDeniedReading('note://privateer')).toBe(false);
  });

  it.each([
    ['note://private/..', 'is not in normal form'],
    ['note://private ', 'holds white space, control or non-ASCII characters'],
    ['note://priv\tate', 'holds white space, control or non-ASCII characters'],
    ['note://private\n', 'holds white space, control or non-ASCII characters'],
    ['file:///public/../private/x', 'is not in normal form'],
    ['file:///public/%2e%2e/private/x', 'is not in normal form'],
    ['note://pub%6cic/%7Ex', 'percent-encodes an unreserved character or a separator'],
    ['file:///public\\..\\private\\x', 'holds a backslash'],
    ['file:///public/%2fprivate', 'percent-encodes an unreserved character or a separator'],
    ['NOTE://private', 'is not an absolute URI with a lower-case scheme'],
    ['note://private:', 'is not in normal form'],
    ['note://u@private', 'names user information'],
    ['note://Private', 'has upper-case letters in its host'],
    ['note://private#x', 'has a fragment'],
    ['note:private/../x', 'has a dot segment'],
  ])('refuses %j, which an upstream may read as another URI: it %s', (uri, problem) => {
    expect(resourceUriProblem(uri)).toBe(problem);
    expect(decide(read(uri))).toEqual({ effect: 'deny', reason: 'resource-uri-invalid' });
    expectRefused(uri);
  });

  it('denies every spelling that a reader maps onto a denied URI', () => {
    let mapped = 0;
    fc.assert(
      fc.property(mutated(DENIED), ({ spelling }) => {
        if (!readings(spelling).some(isDeniedReading)) return;
        mapped++;
        expectRefused(spelling);
      }),
      { numRuns: 3000 },
    );
    // The property is about spellings that do map onto a denied URI: most of them must.
    expect(mapped).toBeGreaterThan(1500);
  });

  it('denies every spelling under the allowed prefix file:///public/ that a reader maps outside it', () => {
    // Spellings of a public file that step out of /public/ by a dot segment in one form or another.
    const escapes = ['file:///public/../private/x', 'file:///public/%2e%2e/private/x', 'file:///public/x/../../private/x', 'file:///public/..\\private\\x', 'file:///public/%2E%2E%2Fprivate'];
    let mapped = 0;
    fc.assert(
      fc.property(fc.oneof(mutated(ALLOWED), mutated(escapes)), ({ spelling }) => {
        if (!readings(spelling).some(isDeniedReading)) return;
        mapped++;
        expectRefused(spelling);
      }),
      { numRuns: 3000 },
    );
    expect(mapped).toBeGreaterThan(1000);
  });

  it('refuses every spelling other than the normal form itself, whatever it spells, as an invalid URI', () => {
    fc.assert(
      fc.property(mutated([...DENIED, ...ALLOWED]), ({ base, spelling }) => {
        expect(spelling).not.toBe(base);
        expect(resourceUriProblem(spelling), JSON.stringify(spelling)).toBeDefined();
        expect(decide(read(spelling))).toEqual({ effect: 'deny', reason: 'resource-uri-invalid' });
        expectRefused(spelling);
      }),
      { numRuns: 3000 },
    );
  });

  it('answers a refused spelling -32602 naming the URI and why, as the SDK answers invalid params', () => {
    fc.assert(
      fc.property(mutated(DENIED), fc.constantFrom('resources/read', 'resources/subscribe'), ({ spelling }, method) => {
        const body = parseMcpBody(Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 9, method, params: { uri: spelling } })), '2025-06-18');
        const refusal = refusalFor(POLICY, GRANTED, body, decideBody(POLICY, GRANTED, body));
        expect(refusal?.code).toBe('invalid_resource_uri');
        expect(refusal?.shape.rpcCode).toBe(-32602);
        expect(refusal?.details.rpcIds).toEqual([9]);
        expect(refusal?.message).toBe(`Invalid params: resource URI ${JSON.stringify(spelling.slice(0, 200))} ${resourceUriProblem(spelling)}`);
      }),
      { numRuns: 300 },
    );
  });

  it('hides a listed resource in any spelling but its normal form, and shows the normal form', () => {
    fc.assert(
      fc.property(fc.array(mutated([...DENIED, ...ALLOWED]), { minLength: 1, maxLength: 5 }), (spellings) => {
        const filter = new ListFilter({ resource: (uri) => isResourceVisible(POLICY, uri, NO_FACTS) });
        const listed = [...ALLOWED, ...spellings.map(({ spelling }) => spelling)];
        const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { resources: listed.map((uri) => ({ uri, name: 'r' })) } }));
        const shown = (JSON.parse(filter.filterJsonBody(body)!.toString('utf8')) as { result: { resources: { uri: string }[] } }).result.resources.map((r) => r.uri);
        expect(shown).toEqual([...ALLOWED]);
      }),
      { numRuns: 300 },
    );
  });

  it('denies a denied URI whatever query it carries: a server may ignore the query', () => {
    const query = fc.stringMatching(/^[a-z0-9=&]{0,12}$/);
    fc.assert(
      fc.property(fc.constantFrom(...DENIED), query, (uri, q) => {
        const spelling = `${uri}?${q}`;
        expect(resourceUriProblem(spelling)).toBeUndefined();
        expectRefused(spelling);
      }),
    );
  });

  // Positive control: the rules above refuse spellings, not resources.
  it('allows every normal-form URI under an allowed glob, with or without a query, for reads, subscriptions, listen streams, lists and updates', () => {
    const segment = fc.stringMatching(/^(?:[a-z0-9_~-]|%3[fF]|%3A|%C3%A9)[a-z0-9._~-]{0,6}$/);
    const host = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/).filter((h) => h !== 'private');
    const query = fc.option(fc.stringMatching(/^[a-z0-9=&]{1,10}$/), { nil: undefined });
    const normal = fc.oneof(
      fc.tuple(fc.array(segment, { minLength: 1, maxLength: 4 }), query).map(([segments, q]) => `file:///public/${segments.join('/')}${q === undefined ? '' : `?${q}`}`),
      fc.tuple(host, fc.array(segment, { maxLength: 3 }), query).map(([h, segments, q]) => `note://${h}${segments.map((s) => `/${s}`).join('')}${q === undefined ? '' : `?${q}`}`),
    );
    fc.assert(
      fc.property(normal, (uri) => {
        // Normal form by construction: the WHATWG parser leaves it as it is.
        expect(new URL(uri).href).toBe(uri);
        expect(resourceUriProblem(uri)).toBeUndefined();
        const decisions = decisionsFor(uri);
        expect(decisions.read).toMatchObject({ effect: 'allow', reason: 'resource-allowed' });
        expect(decisions.subscribe.effect).toBe('allow');
        expect(decisions.listen.effect).toBe('allow');
        expect(decisions.listed).toBe(true);
        expect(decisions.updateHeard).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('percent-encodings a decoding server would read differently', () => {
  it('refuses encoded white space and controls, and double encodings, which a decode-then-parse server reads as something else', () => {
    for (const uri of ['note://priv%09ate', 'note://private%20', 'note://private%00', 'note://private%7F', 'file:///public/%252e%252e/private/x', 'note://a/%2520']) {
      expect(resourceUriProblem(uri), uri).toMatch(/control character or space, or is encoded twice/);
    }
  });

  it('control: other escapes (a colon, a question mark, UTF-8) stay allowed', () => {
    for (const uri of ['note://a/b%3Ac', 'note://a/%3F', 'note://a/caf%C3%A9']) expect(resourceUriProblem(uri), uri).toBeUndefined();
  });
});
