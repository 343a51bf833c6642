import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError, formatProblem, type ConfigProblem } from '../../src/config/problems.js';
import { configProblems, minimalConfig } from '../support/config-fixtures.js';
import { ASYMMETRIC_ALGORITHMS } from '../../src/config/types.js';
import { decideToolCall, isToolVisible } from '../../src/policy/evaluate.js';

let dir: string;
const configFile = () => join(dir, 'gateway.yaml');
const policyPath = (name: string) => join(dir, 'policies', name);

const TODO_POLICY = `scopes: [todo:read]
tools:
  list_todos: [todo:read]
  add_todo: [todo:write]
  "admin_*": [todo:admin]
  secret_tool: deny
`;

async function writePolicy(name: string, text: string): Promise<void> {
  await writeFile(policyPath(name), text);
}

function problemsOf(text: string): Promise<readonly ConfigProblem[]> {
  return configProblems(configFile(), text);
}

/** Problems as `file:line:col`, with the message kept for the failure report. */
function located(problems: readonly ConfigProblem[]): string[] {
  return problems.map((p) => `${p.file}:${p.line}:${p.col}`);
}

function problemAt(problems: readonly ConfigProblem[], file: string, line: number, col: number): ConfigProblem {
  const found = problems.find((p) => p.file === file && p.line === line && p.col === col);
  if (!found) throw new Error(`no problem at ${file}:${line}:${col}; got:\n${problems.map(formatProblem).join('\n')}`);
  return found;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcp-gw-config-'));
  await mkdir(join(dir, 'policies'));
  await writePolicy('todo.yaml', TODO_POLICY);
  await writePolicy('empty.yaml', '');
  await writePolicy('comments.yaml', '# nothing allowed yet\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseConfig: valid configs', () => {
  it('loads the minimal config with every default', async () => {
    const config = await parseConfig(configFile(), minimalConfig());
    expect(config.file).toBe(configFile());
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.publicUrl).toBeUndefined();
    expect(config.store).toEqual({ type: 'memory' });
    expect(config.allowedOrigins).toEqual([]);
    expect(config.maxBodyBytes).toBe(1_048_576);
    expect(config.upstreamResponseTimeoutMs).toBe(30_000);
    expect(config.issuerDiscoveryTimeoutMs).toBe(5_000);
    expect(config.logLevel).toBe('info');
    expect(config.issuers).toEqual([
      {
        issuer: 'https://idp.example.test',
        preset: 'generic',
        algorithms: ASYMMETRIC_ALGORITHMS,
        clockToleranceSeconds: 30,
        typ: ['at+jwt'],
        dpop: 'allowed',
        requireClaims: {},
        claims: { scopes: ['scope', 'scp'], subject: 'sub', client: ['client_id', 'azp'] },
      },
    ]);
    expect(config.routes).toHaveLength(1);
    const route = config.routes[0]!;
    expect(route.name).toBe('todo');
    expect(route.path).toBe('/mcp');
    expect(route.upstream.href).toBe('http://127.0.0.1:9500/mcp');
  });

  it('reads the policy file relative to the config file and compiles it', async () => {
    const route = (await parseConfig(configFile(), minimalConfig())).routes[0]!;
    expect(route.policy.file).toBe(policyPath('todo.yaml'));
    expect(route.policy.routeScopes).toEqual(['todo:read']);
    expect(route.policy.scopesSupported).toEqual(['todo:read', 'todo:write', 'todo:admin']);
    expect(isToolVisible(route.policy, 'admin_x')).toBe(true);
    expect(isToolVisible(route.policy, 'secret_tool')).toBe(false);
  });

  it('applies explicit values over the defaults', async () => {
    const config = await parseConfig(
      configFile(),
      `listen: { host: 0.0.0.0, port: 9000 }
publicUrl: https://mcp.example.test/
allowedOrigins: [https://app.example.test]
limits: { maxBodyBytes: 2048 }
timeouts: { upstreamResponse: 500ms, issuerDiscovery: 1m }
log: { level: debug }
issuers:
  - issuer: https://idp.example.test
    algorithms: [ES256]
    clockTolerance: 2m
routes:
  - name: todo
    path: /mcp
    upstream: http://127.0.0.1:9500/mcp
    policy: policies/todo.yaml
`,
    );
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(config.publicUrl).toBe('https://mcp.example.test');
    expect(config.allowedOrigins).toEqual(['https://app.example.test']);
    expect(config.maxBodyBytes).toBe(2048);
    expect(config.upstreamResponseTimeoutMs).toBe(500);
    expect(config.issuerDiscoveryTimeoutMs).toBe(60_000);
    expect(config.logLevel).toBe('debug');
    expect(config.issuers[0]).toMatchObject({ issuer: 'https://idp.example.test', algorithms: ['ES256'], clockToleranceSeconds: 120 });
  });

  it('accepts an empty policy file, which denies every tool', async () => {
    const policy = (await parseConfig(configFile(), minimalConfig({ policy: 'policies/empty.yaml' }))).routes[0]!.policy;
    expect(policy.routeScopes).toEqual([]);
    expect(policy.exactTools.size + policy.globTools.length).toBe(0);
    expect(decideToolCall(policy, new Set(['todo:read']), 'list_todos')).toEqual({ effect: 'deny', reason: 'tool-unmatched' });
  });

  it('accepts a policy file holding only comments', async () => {
    const policy = (await parseConfig(configFile(), minimalConfig({ policy: 'policies/comments.yaml' }))).routes[0]!.policy;
    expect(isToolVisible(policy, 'anything')).toBe(false);
  });
});

describe('parseConfig: problems', () => {
  const BAD_CONFIG = `listen:
  port: 99999
  hots: 0.0.0.0
issuers:
  - issuer: ftp://idp.example.test
    clockTolerance: 30 seconds
routes:
  - name: todo
    path: mcp
    upstream: http://127.0.0.1:9500/mcp
    policy: policies/bad.yaml
`;
  const BAD_POLICY = `scopes: [todo:read, "bad scope"]
tools:
  list_todos: [todo:read]
  add_todo: maybe
  extra: 1
other: x
`;

  it('reports every problem of the config and of its policy file in one error, each located', async () => {
    await writePolicy('bad.yaml', BAD_POLICY);
    const problems = await problemsOf(BAD_CONFIG);
    const config = configFile();
    const policy = policyPath('bad.yaml');
    expect(problemAt(problems, config, 2, 9).message).toMatch(/port/);
    expect(problemAt(problems, config, 3, 3).message).toMatch(/hots/);
    expect(problemAt(problems, config, 5, 13).message).toMatch(/issuer/);
    expect(problemAt(problems, config, 6, 21).message).toMatch(/clockTolerance/);
    expect(problemAt(problems, config, 9, 11).message).toMatch(/path/);
    expect(problemAt(problems, policy, 1, 21).message).toMatch(/scopes/);
    expect(problemAt(problems, policy, 4, 13).message).toMatch(/add_todo/);
    expect(problemAt(problems, policy, 5, 10).message).toMatch(/extra/);
    expect(problemAt(problems, policy, 6, 1).message).toMatch(/other/);
    expect(located(problems)).toHaveLength(9);
  });

  it('names every problem as file:line:col in the error message', async () => {
    await writePolicy('bad.yaml', BAD_POLICY);
    const error = await parseConfig(configFile(), BAD_CONFIG).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain(`${configFile()}:3:3:`);
    expect((error as ConfigError).message).toContain(`${policyPath('bad.yaml')}:6:1:`);
  });

  it('reports a missing required key at the enclosing mapping', async () => {
    const problems = await problemsOf(`issuers:
  - issuer: https://idp.example.test
routes:
  - name: todo
    path: /mcp
    upstream: http://127.0.0.1:9500/mcp
`);
    expect(problemAt(problems, configFile(), 4, 5).message).toMatch(/policy/);
    expect(problems).toHaveLength(1);
  });

  it('reports a missing policy file at the policy file', async () => {
    const problems = await problemsOf(minimalConfig({ policy: 'policies/missing.yaml' }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: policyPath('missing.yaml'), line: 1, col: 1 });
  });

  it('reports a duplicate key in the config with its location', async () => {
    const problems = await problemsOf(`issuers:
  - issuer: https://idp.example.test
routes:
  - name: todo
    path: /mcp
    upstream: http://127.0.0.1:9500/mcp
    path: /other
    policy: policies/todo.yaml
`);
    expect(problems).toHaveLength(1);
    expect(problemAt(problems, configFile(), 7, 5).message).toBe('Map keys must be unique');
  });

  it('reports a duplicate key in a policy file with its location', async () => {
    await writePolicy('dup.yaml', 'tools:\n  add_todo: [todo:write]\n  add_todo: deny\n');
    const problems = await problemsOf(minimalConfig({ policy: 'policies/dup.yaml' }));
    expect(problems).toHaveLength(1);
    expect(problemAt(problems, policyPath('dup.yaml'), 3, 3).message).toBe('Map keys must be unique');
  });

  it('reports duplicate route paths and names at the later route', async () => {
    const problems = await problemsOf(`issuers:
  - issuer: https://idp.example.test
routes:
  - name: todo
    path: /mcp
    upstream: http://127.0.0.1:9500/mcp
    policy: policies/todo.yaml
  - name: todo
    path: /mcp
    upstream: http://127.0.0.1:9501/mcp
    policy: policies/todo.yaml
`);
    expect(problemAt(problems, configFile(), 8, 11).message).toMatch(/todo/);
    expect(problemAt(problems, configFile(), 9, 11).message).toMatch(/\/mcp/);
    expect(problems).toHaveLength(2);
  });

  it('reports an issuer listed twice', async () => {
    const problems = await problemsOf(`issuers:
  - issuer: https://idp.example.test
  - issuer: https://idp.example.test/
routes:
  - name: todo
    path: /mcp
    upstream: http://127.0.0.1:9500/mcp
    policy: policies/todo.yaml
`);
    expect(problems).toHaveLength(1);
    expect(problemAt(problems, configFile(), 3, 13).message).toBe("issuer 'https://idp.example.test' is listed twice");
  });

  it('reports reserved route paths', async () => {
    const problems = await problemsOf(`issuers:
  - issuer: https://idp.example.test
routes:
  - name: a
    path: /.well-known/oauth-protected-resource
    upstream: http://127.0.0.1:9500/mcp
    policy: policies/todo.yaml
  - name: b
    path: /healthz
    upstream: http://127.0.0.1:9500/mcp
    policy: policies/todo.yaml
`);
    expect(located(problems)).toEqual([`${configFile()}:5:11`, `${configFile()}:9:11`]);
  });

  it('names an unknown key at the key itself, not at its mapping', async () => {
    const problems = await problemsOf(`issuers:
  - issuer: https://idp.example.test
routes:
  - name: todo
    path: /mcp
    upstream: http://127.0.0.1:9500/mcp
    policy: policies/todo.yaml
    timeout: 5s
`);
    expect(problems).toHaveLength(1);
    expect(problemAt(problems, configFile(), 8, 5).message).toMatch(/timeout/);
  });

  it('names an unknown top-level key at its own line and column', async () => {
    const problems = await problemsOf(`${minimalConfig()}stroe:\n  type: memory\n`);
    expect(problems).toHaveLength(1);
    expect(problemAt(problems, configFile(), 8, 1).message).toBe("unknown key 'stroe' in top level (did you mean 'store'?)");
  });

  it('reports a YAML syntax error with its location', async () => {
    const problems = await problemsOf('issuers:\n  - issuer: "https://idp.example.test\nroutes: []\n');
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.file === configFile() && p.line >= 1 && p.col >= 1)).toBe(true);
  });

  it('reports an empty config as missing its required keys', async () => {
    const problems = await problemsOf('');
    expect(problems.map((p) => p.message).join('\n')).toMatch(/issuers/);
    expect(problems.map((p) => p.message).join('\n')).toMatch(/routes/);
  });
});

describe('transport security of the URLs clients and the gateway rely on', () => {
  it('requires https for issuers and publicUrl beyond loopback', async () => {
    const problems = await problemsOf(`publicUrl: http://mcp.example.com
issuers:
  - issuer: http://idp.example.com
routes:
  - name: todo
    path: /mcp
    upstream: http://127.0.0.1:9500/mcp
    policy: policies/todo.yaml
`);
    expect(problemAt(problems, configFile(), 1, 12).message).toMatch(/https/);
    expect(problemAt(problems, configFile(), 3, 13).message).toMatch(/https/);
    expect(problems).toHaveLength(2);
  });

  it('allows plain http on loopback, for development', async () => {
    for (const host of ['127.0.0.1', 'localhost', '[::1]']) {
      const text = `publicUrl: http://${host}:8080\n${minimalConfig().replace('https://idp.example.test', `http://${host}:9400`)}`;
      await expect(parseConfig(configFile(), text)).resolves.toMatchObject({ publicUrl: `http://${host}:8080` });
    }
  });

  it('refuses a publicUrl whose host no token audience could match (outside RFC 3986, though WHATWG takes it)', async () => {
    const problems = await problemsOf(`publicUrl: "https://mcp{1}.example.com"\n${minimalConfig()}`);
    expect(problems.map((p) => p.message)).toEqual(["publicUrl 'https://mcp{1}.example.com' has a host outside RFC 3986: no token audience could match it"]);
    await expect(parseConfig(configFile(), `publicUrl: "https://MCP.Example.com:443"\n${minimalConfig()}`)).resolves.toMatchObject({ publicUrl: 'https://mcp.example.com' });
  });

  it('requires publicUrl when listening beyond loopback', async () => {
    const problems = await problemsOf(`listen: { host: 0.0.0.0, port: 8080 }\n${minimalConfig()}`);
    expect(problemAt(problems, configFile(), 1, 9).message).toMatch(/publicUrl is required/);
    await expect(parseConfig(configFile(), `listen: { host: 0.0.0.0 }\npublicUrl: https://mcp.example.com\n${minimalConfig()}`)).resolves.toMatchObject({ publicUrl: 'https://mcp.example.com' });
  });
});

describe('durations that must not be zero', () => {
  it('refuses a zero idle timeout or upstream timeout, naming each', async () => {
    const problems = await problemsOf(`timeouts: { upstreamResponse: 0s }\nsessions: { idleTimeout: 0ms }\n${minimalConfig()}`);
    expect(problems.map((p) => p.message).sort()).toEqual(['sessions.idleTimeout must be longer than 0', 'timeouts.upstreamResponse must be longer than 0']);
    expect(located(problems).sort()).toEqual([`${configFile()}:1:31`, `${configFile()}:2:26`].sort());
  });
});

describe('typos', () => {
  it('names the key a typo most likely meant, in config and policy files, and guesses nothing for a stranger key', async () => {
    const { parsePolicy } = await import('../../src/policy/load.js');
    const messages = (text: string) => {
      const result = parsePolicy('p.yaml', text);
      return result.ok ? [] : result.problems.map((p) => `${p.line}:${p.col} ${p.message}`);
    };
    expect(messages('scopes: [a]\ntolls:\n  x: [a]\n')).toEqual(["2:1 unknown key 'tolls' in top level (did you mean 'tools'?)"]);
    expect(messages('rateLimit: { requests: 5, pre: 1m }\n')).toEqual([
      "1:12 rateLimit: missing required key 'per'",
      "1:27 unknown key 'pre' in rateLimit (did you mean 'per'?)",
    ]);
    expect(messages('colour: blue\n')).toEqual(["1:1 unknown key 'colour' in top level"]);
  });
});
