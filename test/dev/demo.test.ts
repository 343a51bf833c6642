/**
 * `npm run demo` (dev/demo.ts) prints commands for people to paste. These tests start the same
 * pieces on free ports and run every printed command as printed: the MCP Inspector's commands
 * through the MCP SDK client, doing what the Inspector does on connecting (its CLI sets the log
 * level right after initialize, which a policy asking more than the route scopes for broke), and
 * curl's as fetch.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, DEMO_USER, type Demo } from '../../dev/demo-stack.js';
import { obtainAccessToken } from '../../dev/idp.js';
import { loadConfig } from '../../src/config/load.js';
import { inspectorRun, parseInstructions, runCurl, type InspectorRun, type Printed } from '../support/demo-instructions.js';
import { captureLogs } from '../support/log-capture.js';
import { connectAuthorizedClient } from '../support/sdk-client.js';

/** What `inspector --cli … --method M` does against an HTTP server with a static header. */
async function runInspectorCli(demo: Demo, run: InspectorRun): Promise<Record<string, unknown>> {
  const client = new Client({ name: 'inspector-cli-like', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(run.url), { requestInit: { headers: run.headers } }));
  try {
    // The Inspector's InspectorClient.connect, after initialize: `if (initialLoggingLevel &&
    // capabilities.logging) await client.setLoggingLevel(initialLoggingLevel)`, 'debug' for --cli.
    expect(client.getServerCapabilities()?.logging).toBeDefined();
    demo.upstream.clearLog();
    await client.setLoggingLevel('debug');
    expect(demo.upstream.requests.flatMap((r) => r.rpcMethods)).toContain('logging/setLevel');
    if (run.method === 'tools/list') return (await client.listTools()) as Record<string, unknown>;
    if (run.method === 'tools/call') return (await client.callTool({ name: run.toolName!, arguments: {} })) as Record<string, unknown>;
    throw new Error(`an Inspector method this test does not run: ${run.method}`);
  } finally {
    await client.close();
  }
}

const toolNames = (result: Record<string, unknown>) => (result.tools as { name: string }[]).map((t) => t.name);

describe('npm run demo: the printed commands', () => {
  let demo: Demo;
  let printed: Printed;
  const inspectorRuns = () => printed.commands.filter((c) => c.words[0] === 'npx').map((c) => ({ ...c, run: inspectorRun(c.words) }));

  beforeAll(async () => {
    demo = await startDemo(await loadConfig('gateway.example.yaml'), { ports: 'ephemeral', logger: captureLogs().logger });
    printed = parseInstructions(demo.instructions);
  });
  afterAll(async () => {
    await demo?.close();
  });

  it('set two tokens and name the running gateway in every command', () => {
    expect(Object.keys(printed.env).sort()).toEqual(['ADMIN_TOKEN', 'TOKEN']);
    expect(printed.commands.map((c) => c.words[0])).toEqual(['npx', 'npx', 'npx', 'curl', 'npx']);
    for (const { run } of inspectorRuns()) {
      expect(run.url).toBe(demo.resource);
      expect(run.transport).toBe('http');
    }
    expect(printed.commands.find((c) => c.words[0] === 'curl')!.words).toContain(demo.resource);
  });

  it('Inspector --cli with a ready-made token: connects (setting the log level on the way) and lists the tools', async () => {
    const listing = inspectorRuns().filter(({ run }) => run.cli && run.headers.Authorization && run.method === 'tools/list');
    expect(listing).toHaveLength(1);
    const tools = toolNames(await runInspectorCli(demo, listing[0]!.run));
    // The demo user is in ops, so the admin tools are listed; todo:read alone steps up to call them.
    expect(tools).toEqual(expect.arrayContaining(['list_todos', 'add_todo', 'admin_stats']));
    expect(tools).not.toContain('secret_tool');
  });

  it('the step-up command gets 403 insufficient_scope naming the scopes the demo says', async () => {
    const command = printed.commands.find((c) => c.words[0] === 'curl')!;
    const said = /scope="([^"]+)"/.exec(command.said)?.[1];
    expect(said).toBe('todo:read todo:write');
    const response = await runCurl(command.words);
    expect(response.status).toBe(403);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain(`scope="${said}"`);
    // Positive control: the same request with a token that holds those scopes gets through.
    const { accessToken } = await obtainAccessToken(demo.idp, { resource: demo.resource, scope: said!, subject: DEMO_USER });
    const allowed = await runCurl(command.words.map((w) => w.replace(printed.env.TOKEN!, accessToken)));
    expect(allowed.status).not.toBe(403);
    expect(allowed.headers.get('www-authenticate')).toBeNull();
  });

  it('Inspector --cli with the admin token: calls admin_stats, for a member of ops', async () => {
    const admin = inspectorRuns().filter(({ run }) => run.method === 'tools/call' && run.toolName === 'admin_stats');
    expect(admin).toHaveLength(1);
    expect(admin[0]!.run.headers.Authorization).toBe(`Bearer ${printed.env.ADMIN_TOKEN}`);
    const result = await runInspectorCli(demo, admin[0]!.run);
    expect(result.isError).toBeFalsy();
    expect(JSON.stringify(result.content)).toContain('toolCalls');
  });

  it('admin_stats stays closed to someone outside ops, even with todo:admin (the control for the groups claim)', async () => {
    const admin = inspectorRuns().find(({ run }) => run.toolName === 'admin_stats')!.run;
    const { accessToken } = await obtainAccessToken(demo.idp, { resource: demo.resource, scope: 'todo:read todo:admin', subject: 'not-in-ops' });
    const outsider = { ...admin, headers: { Authorization: `Bearer ${accessToken}` } };
    await expect(runInspectorCli(demo, outsider)).rejects.toThrow(/admin_stats/);
  });

  it("the Inspector's own OAuth flow (web UI, or --cli without a token) logs the demo user in, who may try the admin tools", async () => {
    const ownFlow = inspectorRuns().filter(({ run }) => !run.headers.Authorization);
    expect(ownFlow.map(({ run }) => run.cli)).toEqual([false, true]);
    // An MCP host's discovery, registration, PKCE and step-up, through a browser that sends no
    // login_hint: whoever the IdP logs in by default.
    const { client, withAuth, close } = await connectAuthorizedClient(demo.resource, null);
    try {
      await client.setLoggingLevel('debug');
      expect(toolNames(await withAuth(() => client.listTools()))).toContain('admin_stats');
      const result = await withAuth(() => client.callTool({ name: 'admin_stats', arguments: {} }));
      expect(result.isError).toBeFalsy();
    } finally {
      await close();
    }
  });
});
