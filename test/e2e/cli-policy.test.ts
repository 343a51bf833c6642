import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/gateway-process.js';
import { TODO_POLICY } from '../support/stack.js';

/** `explain` and `test`, run as pipelines run them: the built command in a child process. */
const run = runCli;

describe('policy commands for pipelines', () => {
  let dir: string;
  let config: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-cli-policy-'));
    config = join(dir, 'gateway.yaml');
    await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
    await writeFile(
      config,
      'issuers:\n  - issuer: https://idp.example.test\nroutes:\n  - { name: todo, path: /mcp, upstream: "http://127.0.0.1:1/mcp", policy: todo.yaml }\n',
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  describe('explain', () => {
    it('prints the decision, the reason, the rule and the step-up scopes', async () => {
      const { code, stdout } = await run(['explain', '--config', config, '--route', 'todo', '--scopes', 'todo:read', '--tool', 'add_todo']);
      expect(code).toBe(0);
      expect(stdout).toBe('decision: step-up\nreason:   tool-scopes-missing\nrule:     tools["add_todo"]\nstep-up:  scope="todo:read todo:write"\n');
    });

    it('explains denials and non-tool methods, and answers JSON for scripts', async () => {
      const denied = await run(['explain', '--config', config, '--route', 'todo', '--scopes', 'todo:read todo:write todo:admin', '--tool', 'secret_tool', '--json']);
      expect(JSON.parse(denied.stdout)).toEqual({ decision: 'deny', reason: 'tool-denied', rule: 'tools["secret_tool"]' });
      const unmatched = await run(['explain', '--config', config, '--route', 'todo', '--scopes', 'todo:read', '--tool', 'nope', '--json']);
      expect(JSON.parse(unmatched.stdout)).toEqual({ decision: 'deny', reason: 'tool-unmatched' });
      const listing = await run(['explain', '--config', config, '--route', 'todo', '--method', 'tools/list', '--json']);
      expect(JSON.parse(listing.stdout)).toEqual({ decision: 'step-up', reason: 'route-scopes-missing', rule: 'scopes', stepUpScopes: ['todo:read'] });
    });

    it('explains resources and prompts, and wants one target only', async () => {
      await writeFile(join(dir, 'todo.yaml'), `${TODO_POLICY}resources:\n  "todo://*": [todo:read]\nprompts:\n  summarize: deny\n`);
      const resource = await run(['explain', '--config', config, '--route', 'todo', '--scopes', 'todo:read', '--resource', 'todo://list', '--json']);
      expect(JSON.parse(resource.stdout)).toEqual({ decision: 'allow', reason: 'resource-allowed', rule: 'resources["todo://*"]' });
      const prompt = await run(['explain', '--config', config, '--route', 'todo', '--scopes', 'todo:read', '--prompt', 'summarize', '--json']);
      expect(JSON.parse(prompt.stdout)).toEqual({ decision: 'deny', reason: 'prompt-denied', rule: 'prompts["summarize"]' });
      const both = await run(['explain', '--config', config, '--route', 'todo', '--tool', 'x', '--prompt', 'y']);
      expect([both.code, both.stderr]).toEqual([2, 'mcp-auth-gateway: give one of --tool, --resource, --prompt and --method\n']);
      await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
    });

    it('explains a rule with conditions from a claims file, a subject and a client', async () => {
      await writeFile(join(dir, 'todo.yaml'), `${TODO_POLICY.replace('  add_todo: [todo:write]\n', '')}  add_todo:\n    scopes: [todo:write]\n    when: { claims: { groups: [writers] }, clients: [agent-1] }\n`);
      await writeFile(join(dir, 'claims.json'), JSON.stringify({ groups: ['writers'] }));
      const args = ['explain', '--config', config, '--route', 'todo', '--scopes', 'todo:read todo:write', '--tool', 'add_todo', '--json'];
      expect(JSON.parse((await run([...args, '--claims', join(dir, 'claims.json'), '--client', 'agent-1'])).stdout)).toMatchObject({ decision: 'allow' });
      expect(JSON.parse((await run([...args, '--claims', join(dir, 'claims.json'), '--client', 'agent-2'])).stdout)).toEqual({ decision: 'deny', reason: 'condition-unmet', rule: 'tools["add_todo"]' });
      const broken = await run([...args, '--claims', join(dir, 'nope.json')]);
      expect(broken.code).toBe(2);
      expect(broken.stderr).toContain(`--claims ${join(dir, 'nope.json')}: ENOENT`);
      await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
    });

    it('explains argument constraints with --args', async () => {
      await writeFile(join(dir, 'todo.yaml'), `${TODO_POLICY.replace('  add_todo: [todo:write]\n', '')}  add_todo:\n    scopes: [todo:write]\n    arguments: { title: { glob: "ok:*" } }\n`);
      const args = ['explain', '--config', config, '--route', 'todo', '--scopes', 'todo:read todo:write', '--tool', 'add_todo', '--json'];
      expect(JSON.parse((await run([...args, '--args', '{"title":"ok: fine"}'])).stdout)).toMatchObject({ decision: 'allow' });
      expect(JSON.parse((await run([...args, '--args', '{"title":"nope"}'])).stdout)).toEqual({ decision: 'deny', reason: 'arguments-not-allowed', rule: 'tools["add_todo"]' });
      const broken = await run([...args, '--args', '[1]']);
      expect([broken.code, broken.stderr]).toEqual([2, 'mcp-auth-gateway: --args: not a JSON object of arguments\n']);
      await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
    });

    it('exits 2 naming the routes when the route does not exist', async () => {
      const { code, stderr } = await run(['explain', '--config', config, '--route', 'tood', '--tool', 'list_todos']);
      expect(code).toBe(2);
      expect(stderr).toBe(`mcp-auth-gateway: no route 'tood' in ${config} (routes: todo)\n`);
    });
  });

  describe('test', () => {
    it('runs the test file beside the policy and prints a summary line', async () => {
      await writeFile(
        join(dir, 'todo.test.yaml'),
        'cases:\n  - { name: readers list, scopes: [todo:read], tool: list_todos, expect: allow }\n  - { name: secret stays secret, scopes: [todo:read, todo:admin], tool: secret_tool, expect: deny, reason: tool-denied }\n',
      );
      const { code, stdout } = await run(['test', '--config', config]);
      expect(stdout).toBe('policy tests: 2 passed, 0 failed (1 file)\n');
      expect(code).toBe(0);
    });

    it('exits 1 and names each failing case at its line, with what was decided instead', async () => {
      const file = join(dir, 'todo.test.yaml');
      await writeFile(file, 'cases:\n  - { name: readers list, scopes: [todo:read], tool: list_todos, expect: allow }\n  - name: writers delete\n    scopes: [todo:read]\n    tool: delete_todo\n    expect: allow\n');
      const { code, stdout } = await run(['test', '--config', config]);
      expect(code).toBe(1);
      expect(stdout).toBe(
        `${file}:3:5: case 'writers delete': expected allow, got step-up (tool-scopes-missing, tools["delete_todo"])\npolicy tests: 1 passed, 1 failed (1 file)\n`,
      );
    });

    it('reports a typo in a test file as that case failing, at each mistake, and runs the other cases', async () => {
      const file = join(dir, 'todo.test.yaml');
      await writeFile(
        file,
        'cases:\n  - name: readers list\n    scopes: [todo:read]\n    tool: list_todos\n    expcet: allow\n  - { name: writers add, scopes: [todo:read, todo:write], tool: add_todo, expect: allow }\n',
      );
      const { code, stdout } = await run(['test', '--config', config]);
      expect(code).toBe(1);
      expect(stdout).toBe(
        `${file}:2:5: case 'readers list': missing required key 'expect'\n` +
          `${file}:5:5: unknown key 'expcet' in case 'readers list' (did you mean 'expect'?)\n` +
          'policy tests: 1 passed, 1 failed (1 file)\n',
      );
    });
  });
});
