import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { audienceIncludes } from '../../src/auth/audience.js';
import { comparableHttpUri } from '../../src/auth/http-uri.js';

/**
 * The audience rule (issue 23): an http(s) `aud` names the resource when it is the same URI up to
 * the case of scheme and host, the default port, and an empty path for `/`; nothing else is
 * normalized, userinfo never matches, and the host is compared as written. The DPoP `htu` rule is
 * the same after its query and fragment are cut off.
 */
const RESOURCE = 'https://mcp.example.com/mcp';
const LOOPBACK = 'http://127.0.0.1:54321/mcp';

describe('audienceIncludes: http(s) audiences', () => {
  it('accepts the same URI with scheme and host in any case, the default port written out, an empty path for /', () => {
    const accepted: [unknown, string][] = [
      [RESOURCE, RESOURCE],
      ['HTTPS://MCP.EXAMPLE.COM/mcp', RESOURCE],
      ['hTtPs://Mcp.Example.Com/mcp', RESOURCE],
      ['https://mcp.example.com:443/mcp', RESOURCE],
      ['HTTPS://MCP.Example.COM:443/mcp', RESOURCE],
      [['api://other', 'https://other.example.com/mcp', 'https://MCP.example.com:443/mcp'], RESOURCE],
      ['http://mcp.example.com:80/mcp', 'http://mcp.example.com/mcp'],
      ['HTTP://127.0.0.1:54321/mcp', LOOPBACK],
      ['https://mcp.example.com', 'https://mcp.example.com/'],
      ['https://mcp.example.com/', 'https://mcp.example.com'],
      ['https://mcp.example.com:443', 'https://mcp.example.com/'],
      ['http://[::1]:8080/mcp', 'http://[::1]:8080/mcp'],
      ['http://[2001:DB8::A]/mcp', 'http://[2001:db8::a]/mcp'],
      ['https://mcp.example.com/mcp?tenant=a', 'https://MCP.example.com/mcp?tenant=a'],
      // The expected value is read by the same rule: a configured audience may be spelled loosely.
      [RESOURCE, 'HTTPS://MCP.example.com:443/mcp'],
    ];
    for (const [aud, expected] of accepted) expect(audienceIncludes(aud, expected), `${JSON.stringify(aud)} for ${expected}`).toBe(true);
  });

  const refused: [string, string][] = [
    // dot segments, resolved by the WHATWG parser
    ['dot-dot segments', 'https://mcp.example.com/other/mcp/../../mcp'],
    ['a dot-dot segment', 'https://mcp.example.com/x/../mcp'],
    ['a dot segment', 'https://mcp.example.com/./mcp'],
    ['a trailing dot segment', 'https://mcp.example.com/mcp/.'],
    ['an encoded dot-dot segment', 'https://mcp.example.com/x/%2e%2e/mcp'],
    // userinfo, dropped by a host-only comparison
    ['userinfo', 'https://attacker@mcp.example.com/mcp'],
    ['user and password', 'https://user:pass@mcp.example.com/mcp'],
    ['empty userinfo', 'https://@mcp.example.com/mcp'],
    ['userinfo after the port', 'https://mcp.example.com:443@mcp.example.com/mcp'],
    ['the resource as userinfo', 'https://mcp.example.com@evil.example/mcp'],
    // percent-encoding, case and slashes in the path
    ['a percent-encoded unreserved character', 'https://mcp.example.com/%6dcp'],
    ['an upper-case percent-encoding', 'https://mcp.example.com/%6Dcp'],
    ['an encoded slash', 'https://mcp.example.com%2Fmcp'],
    ['the path in another case', 'https://mcp.example.com/MCP'],
    ['a trailing slash', 'https://mcp.example.com/mcp/'],
    ['a double slash', 'https://mcp.example.com//mcp'],
    ['a backslash for the slash', 'https://mcp.example.com\\mcp'],
    ['a backslash in the path', 'https://mcp.example.com/mcp\\'],
    ['a lone percent', 'https://mcp.example.com/mcp%'],
    // whitespace and other characters outside the grammar
    ['a leading space', ' https://mcp.example.com/mcp'],
    ['a trailing space', 'https://mcp.example.com/mcp '],
    ['a tab in the path', 'https://mcp.example.com/m\tcp'],
    ['a newline after the host', 'https://mcp.example.com\n/mcp'],
    ['a non-ASCII host (IDN not punycoded)', 'https://mcp.exämple.com/mcp'],
    ['fullwidth letters in the host', 'https://ｍcp.example.com/mcp'],
    // fragments, queries, ports, schemes
    ['a fragment', 'https://mcp.example.com/mcp#x'],
    ['an empty fragment', 'https://mcp.example.com/mcp#'],
    ['an empty query', 'https://mcp.example.com/mcp?'],
    ['a query', 'https://mcp.example.com/mcp?x=1'],
    ['another port', 'https://mcp.example.com:8443/mcp'],
    ['the default port with a leading zero', 'https://mcp.example.com:0443/mcp'],
    ['an empty port', 'https://mcp.example.com:/mcp'],
    ["the other scheme's default port", 'https://mcp.example.com:80/mcp'],
    ['the other scheme', 'http://mcp.example.com/mcp'],
    ['a single slash after the scheme', 'https:/mcp.example.com/mcp'],
    ['no host', 'https:///mcp'],
    ['a trailing dot in the host', 'https://mcp.example.com./mcp'],
    ['another host', 'https://mcp.example.com.evil.example/mcp'],
  ];

  it.each(refused)('refuses %s', (_name, aud) => {
    expect(audienceIncludes(aud, RESOURCE)).toBe(false);
    expect(audienceIncludes([aud], RESOURCE)).toBe(false);
  });

  const loopbackSpellings: [string, string][] = [
    ['hexadecimal and shortened IPv4', 'http://0x7f.1:54321/mcp'],
    ['IPv4 as one number', 'http://2130706433:54321/mcp'],
    ['IPv4 as one hexadecimal number', 'http://0x7f000001:54321/mcp'],
    ['shortened IPv4', 'http://127.1:54321/mcp'],
    ['octal IPv4', 'http://0177.0.0.1:54321/mcp'],
    ['IPv4 with leading zeros', 'http://127.000.000.001:54321/mcp'],
    ['IPv4 with a trailing dot', 'http://127.0.0.1.:54321/mcp'],
    ['a percent-encoded host', 'http://127.0.0.%31:54321/mcp'],
    ['the port with a leading zero', 'http://127.0.0.1:054321/mcp'],
    ['the issue: dot segments', 'http://127.0.0.1:54321/other/mcp/../../mcp'],
    ['the issue: userinfo', 'http://attacker@127.0.0.1:54321/mcp'],
  ];

  it.each(loopbackSpellings)('refuses %s for a loopback resource', (_name, aud) => {
    expect(audienceIncludes(aud, LOOPBACK)).toBe(false);
  });

  it('refuses every one of those spellings although the WHATWG URL parser reads it as the resource (what the old rule compared)', () => {
    const whatwg = (uri: string) => {
      const url = new URL(uri);
      return `${url.protocol}//${url.host}${url.pathname}${url.search}`;
    };
    const sameForWhatwg = [
      ...refused.filter(([, aud]) => URL.canParse(aud) && whatwg(aud) === whatwg(RESOURCE)).map(([, aud]) => [aud, RESOURCE] as const),
      ...loopbackSpellings.filter(([, aud]) => URL.canParse(aud) && whatwg(aud) === whatwg(LOOPBACK)).map(([, aud]) => [aud, LOOPBACK] as const),
    ];
    // The attack spellings of the issue are among them.
    expect(sameForWhatwg.map(([aud]) => aud)).toEqual(
      expect.arrayContaining(['http://127.0.0.1:54321/other/mcp/../../mcp', 'http://attacker@127.0.0.1:54321/mcp', 'http://0x7f.1:54321/mcp']),
    );
    expect(sameForWhatwg.length).toBeGreaterThanOrEqual(20);
    for (const [aud, expected] of sameForWhatwg) expect(audienceIncludes(aud, expected), aud).toBe(false);
  });

  it('compares IPv6 literals as written: another spelling, a zone or an IPvFuture is another host', () => {
    for (const aud of ['http://[0:0:0:0:0:0:0:1]:8080/mcp', 'http://[::0:1]:8080/mcp', 'http://[::1%25lo]:8080/mcp', 'http://[::ffff:127.0.0.1]:8080/mcp', 'http://[v1.x]:8080/mcp', 'http://[::1:8080/mcp', 'http://::1:8080/mcp']) {
      expect(audienceIncludes(aud, 'http://[::1]:8080/mcp'), aud).toBe(false);
    }
  });

  it('refuses what is not an audience at all', () => {
    for (const aud of [undefined, null, 42, {}, [], [42], ['not a uri'], '', 'https://']) expect(audienceIncludes(aud, RESOURCE), JSON.stringify(aud)).toBe(false);
  });

  it('an expected value the rule refuses (from a config that skipped validation) matches nothing, not even itself', () => {
    for (const expected of ['https://gw@mcp.example.com/mcp', 'https://mcp.example.com/mcp#x', 'https://mcp.example.com/m cp', 'https:///mcp']) {
      expect(audienceIncludes(expected, expected), expected).toBe(false);
      expect(audienceIncludes([expected], expected), expected).toBe(false);
    }
  });
});

describe('audienceIncludes: other audiences are compared exactly', () => {
  it('Entra application ids and api:// identifiers', () => {
    const guid = '3f1c2a9e-7d4b-4c1e-9a2f-0b8c6d5e4f3a';
    expect(audienceIncludes(guid, guid)).toBe(true);
    expect(audienceIncludes(['x', guid], guid)).toBe(true);
    expect(audienceIncludes(guid.toUpperCase(), guid)).toBe(false);
    expect(audienceIncludes(` ${guid}`, guid)).toBe(false);
    expect(audienceIncludes('api://mcp', 'api://mcp')).toBe(true);
    for (const aud of ['API://mcp', 'api://MCP', 'api://mcp/', 'api://x/../mcp', 'api://user@mcp']) expect(audienceIncludes(aud, 'api://mcp'), aud).toBe(false);
  });

  it('a URL never matches an identifier, nor an identifier a URL', () => {
    expect(audienceIncludes('https://mcp.example.com/mcp', 'api://mcp')).toBe(false);
    expect(audienceIncludes('api://mcp', RESOURCE)).toBe(false);
    expect(audienceIncludes('http:mcp.example.com/mcp', RESOURCE)).toBe(false);
  });
});

describe('comparableHttpUri for a DPoP htu (RFC 9449 §4.3 item 9)', () => {
  const htu = (value: string) => comparableHttpUri(value, true);
  const expected = htu(LOOPBACK);

  it('ignores the query and the fragment, and otherwise follows the audience rule', () => {
    expect(expected).toBe(LOOPBACK);
    for (const value of [LOOPBACK, `${LOOPBACK}?x=1`, `${LOOPBACK}#f`, `${LOOPBACK}?`, `${LOOPBACK}?a#b@c`, 'HTTP://127.0.0.1:54321/mcp?q', 'http://127.0.0.1:54321/mcp?a b']) {
      expect(htu(value), value).toBe(expected);
    }
    expect(htu('https://MCP.example.com:443/mcp#x')).toBe(htu(RESOURCE));
  });

  it('refuses dot segments, userinfo, other spellings of the host, and anything malformed before the query', () => {
    for (const value of [
      'http://127.0.0.1:54321/other/../mcp',
      'http://127.0.0.1:54321/./mcp',
      'http://attacker@127.0.0.1:54321/mcp',
      'http://0x7f.1:54321/mcp',
      'http://127.0.0.1:54321/%6dcp',
      'http://127.0.0.1:54321/mcp/',
      'http://127.0.0.1:54321\\mcp',
      'http://127.0.0.1:54321/mcp ?x',
      ' http://127.0.0.1:54321/mcp',
    ]) {
      expect(htu(value), value).not.toBe(expected);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Property: for any spelling of a URI made by random mutations, the audience is accepted exactly
// when the spelling is the resource up to the case of scheme and host and the default port.
// ---------------------------------------------------------------------------------------------

/** A spelling, component by component, so the oracle below needs no URI parser. */
interface Spelling {
  readonly prefix: string;
  readonly scheme: string;
  readonly userinfo: string | undefined;
  readonly host: string;
  readonly port: string | undefined;
  readonly path: string;
  readonly suffix: string;
  /** An empty fragment (`#`) after everything else. */
  readonly fragment: boolean;
}

const render = (s: Spelling) => `${s.prefix}${s.scheme}://${s.userinfo === undefined ? '' : `${s.userinfo}@`}${s.host}${s.port === undefined ? '' : `:${s.port}`}${s.path}${s.suffix}${s.fragment ? '#' : ''}`;
const defaultPort = (scheme: string) => (scheme.toLowerCase() === 'https' ? '443' : '80');
const effectivePort = (s: Spelling) => (s.port === undefined || s.port === defaultPort(s.scheme) ? '' : `:${s.port}`);

/** The documented rule, on components: scheme and host case-folded, default port dropped, '' for '/', nothing else. */
function equivalent(s: Spelling, base: Spelling): boolean {
  return (
    s.prefix === '' &&
    s.suffix === '' &&
    !s.fragment &&
    s.userinfo === undefined &&
    s.scheme.toLowerCase() === base.scheme &&
    s.host.toLowerCase() === base.host &&
    effectivePort(s) === effectivePort(base) &&
    (s.path === '' ? '/' : s.path) === base.path
  );
}

const ipv4Bytes = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }));
const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,6}[a-z0-9]$/);
const segment = fc.stringMatching(/^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,7}$/);

/** A resource as the gateway derives it: lower-case scheme and host, no default port, a non-empty path. */
const base: fc.Arbitrary<Spelling> = fc.record({
  prefix: fc.constant(''),
  scheme: fc.constantFrom('http', 'https'),
  userinfo: fc.constant(undefined),
  host: fc.oneof(
    fc.array(label, { minLength: 1, maxLength: 3 }).map((labels) => labels.join('.')),
    ipv4Bytes.map((bytes) => bytes.join('.')),
    fc.constantFrom('[::1]', '[2001:db8::1]', '[fe80::a:b]'),
  ),
  port: fc.option(fc.integer({ min: 1, max: 65535 }).map(String), { nil: undefined }),
  path: fc.oneof(fc.constant('/'), fc.array(segment, { minLength: 1, maxLength: 4 }).map((segments) => `/${segments.join('/')}`)),
  suffix: fc.constant(''),
  fragment: fc.constant(false),
}).filter((s) => s.port !== defaultPort(s.scheme));

type Mutation = (s: Spelling, pick: number) => Spelling;

const randomCase = (text: string, pick: number) => [...text].map((char, i) => ((pick >> i % 30) & 1 ? char.toUpperCase() : char.toLowerCase())).join('');
const at = (length: number, pick: number) => (length === 0 ? 0 : pick % length);
const slashes = (path: string) => [...path].flatMap((char, i) => (char === '/' ? [i] : []));

function ipv4Alternatives(host: string): string[] {
  const bytes = host.split('.').map(Number);
  if (bytes.length !== 4 || bytes.some((byte) => !Number.isInteger(byte))) return [];
  const [a, b, c, d] = bytes as [number, number, number, number];
  const number = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
  return [
    String(number),
    `0x${number.toString(16)}`,
    `${a}.${(b << 16) + (c << 8) + d}`,
    `${a}.${b}.${(c << 8) + d}`,
    bytes.map((byte) => `0x${byte.toString(16)}`).join('.'),
    bytes.map((byte) => `0${byte.toString(8)}`).join('.'),
    bytes.map((byte) => String(byte).padStart(3, '0')).join('.'),
    `${host}.`,
  ].filter((alternative) => alternative !== host);
}

const MUTATIONS: Record<string, Mutation> = {
  schemeCase: (s, pick) => ({ ...s, scheme: randomCase(s.scheme, pick) }),
  hostCase: (s, pick) => ({ ...s, host: randomCase(s.host, pick) }),
  defaultPort: (s) => (s.port === undefined ? { ...s, port: defaultPort(s.scheme) } : s),
  otherDefaultPort: (s) => ({ ...s, port: s.scheme.toLowerCase() === 'https' ? '80' : '443' }),
  portLeadingZero: (s) => ({ ...s, port: `0${s.port ?? defaultPort(s.scheme)}` }),
  emptyPort: (s) => ({ ...s, port: '' }),
  emptyPath: (s) => (s.path === '/' ? { ...s, path: '' } : s),
  userinfo: (s, pick) => ({ ...s, userinfo: ['attacker', 'user:pass', '', 'a%40b', s.host][pick % 5]! }),
  dotDot: (s, pick) => {
    const i = slashes(s.path)[at(slashes(s.path).length, pick)] ?? 0;
    return { ...s, path: `${s.path.slice(0, i + 1)}x/../${s.path.slice(i + 1)}` };
  },
  dot: (s, pick) => {
    const i = slashes(s.path)[at(slashes(s.path).length, pick)] ?? 0;
    return { ...s, path: `${s.path.slice(0, i + 1)}./${s.path.slice(i + 1)}` };
  },
  percentEncode: (s, pick) => {
    const positions = [...s.path].flatMap((char, i) => (char === '/' || char === '%' ? [] : [i]));
    if (positions.length === 0) return { ...s, path: `${s.path}%2F` };
    const i = positions[at(positions.length, pick)]!;
    const hex = s.path.charCodeAt(i).toString(16).padStart(2, '0');
    return { ...s, path: `${s.path.slice(0, i)}%${pick & 1 ? hex.toUpperCase() : hex}${s.path.slice(i + 1)}` };
  },
  pathCase: (s, pick) => ({ ...s, path: randomCase(s.path, pick) }),
  trailingSlash: (s) => ({ ...s, path: `${s.path}/` }),
  backslash: (s, pick) => {
    const i = slashes(s.path)[at(slashes(s.path).length, pick)] ?? 0;
    return { ...s, path: `${s.path.slice(0, i)}\\${s.path.slice(i + 1)}` };
  },
  whitespaceInPath: (s, pick) => {
    const i = at(s.path.length + 1, pick);
    return { ...s, path: `${s.path.slice(0, i)}${[' ', '\t', '\n', '\r', '\u00a0'][pick % 5]}${s.path.slice(i)}` };
  },
  whitespaceAround: (s, pick) => (pick & 1 ? { ...s, prefix: ' ' } : { ...s, suffix: ['\n', ' ', '\t'][pick % 3]! }),
  ipv4Form: (s, pick) => {
    const alternatives = ipv4Alternatives(s.host);
    return alternatives.length === 0 ? s : { ...s, host: alternatives[pick % alternatives.length]! };
  },
  fragment: (s) => ({ ...s, fragment: true }),
};

const mutation = fc.tuple(fc.constantFrom(...Object.keys(MUTATIONS)), fc.nat());
const spelled = base.chain((resource) =>
  fc.array(mutation, { maxLength: 4 }).map((steps) => ({
    resource,
    spelling: steps.reduce((s, [name, pick]) => MUTATIONS[name]!(s, pick), resource),
    steps: steps.map(([name]) => name),
  })),
);

describe('property: only the documented equivalences are accepted', () => {
  it('audienceIncludes(spelling, resource) holds exactly when the spelling is the resource up to scheme and host case and the default port', () => {
    fc.assert(
      fc.property(spelled, ({ resource, spelling }) => {
        const expected = render(resource);
        const aud = render(spelling);
        const same = equivalent(spelling, resource);
        expect(audienceIncludes(aud, expected), `${JSON.stringify(aud)} for ${expected}`).toBe(same);
        expect(audienceIncludes(['api://other', aud], expected)).toBe(same);
        // The htu rule is the same once a query and a fragment are cut off.
        const htu = spelling.fragment ? `${aud}x?q=1` : `${aud}?q=1#f`;
        const htuMatches = comparableHttpUri(htu, true) === comparableHttpUri(expected, true);
        expect(htuMatches, `htu ${JSON.stringify(htu)}`).toBe(equivalent({ ...spelling, fragment: false }, resource));
      }),
      { numRuns: 5000 },
    );
  });

  it('the generator makes both kinds: accepted spellings other than the resource, and refused ones', () => {
    const samples = fc.sample(spelled, { numRuns: 2000, seed: 23 });
    const acceptedOther = samples.filter(({ resource, spelling }) => equivalent(spelling, resource) && render(spelling) !== render(resource));
    const refused = samples.filter(({ resource, spelling }) => !equivalent(spelling, resource));
    expect(acceptedOther.length).toBeGreaterThan(50);
    expect(refused.length).toBeGreaterThan(500);
  });

  it('any string built from URI pieces is accepted only in the documented equivalence class, and never throws', () => {
    const pieces = ['http', 'HTTPS', 'https', '://', ':/', 'mcp.example.com', 'MCP.EXAMPLE.COM', ':443', ':80', ':', '/mcp', '/MCP', '/', '@', '..', '.', '%6d', '?', '#', '\\', ' ', 'x'];
    const soup = fc.array(fc.constantFrom(...pieces), { maxLength: 8 }).map((parts) => parts.join(''));
    const classOf = /^https:\/\/mcp\.example\.com(?::443)?\/mcp$/;
    fc.assert(
      fc.property(fc.oneof(soup, fc.constantFrom('https://', 'HTTPS://mcp.example.com:443/mcp', 'https://mcp.example.com/mcp')), (aud) => {
        if (audienceIncludes(aud, RESOURCE)) {
          expect(aud.toLowerCase()).toMatch(classOf);
          expect(aud.endsWith('/mcp')).toBe(true); // the path in its own case
        }
      }),
      { numRuns: 5000 },
    );
  });
});
