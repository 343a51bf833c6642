/**
 * Exercises dev/upstream.ts directly with the real SDK client (no gateway, no auth), so that
 * end-to-end gateway tests can trust the sample upstream and its request log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';

import { SAMPLE_PROMPT_NAME, SAMPLE_RESOURCE_URI, SAMPLE_TOOL_NAMES, startSampleUpstream, summarizeRpc } from '../../dev/upstream.js';
import type { SampleUpstream, SampleUpstreamOptions } from '../../dev/upstream.js';

async function connectClient(url: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'upstream-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport };
}

function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

async function waitFor(condition: () => boolean, timeoutMs = 5_000, onTick?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await onTick?.();
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('summarizeRpc', () => {
  it('is batch-aware and only names tools/call targets', () => {
    const body = [
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add_todo', arguments: { title: 'x' } } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 2, method: 'prompts/get', params: { name: 'summarize_todos' } },
      { jsonrpc: '2.0', id: 3, result: {} },
    ];
    expect(summarizeRpc(body)).toEqual({
      rpcMethods: ['tools/call', 'notifications/initialized', 'prompts/get'],
      toolNames: ['add_todo'],
    });
    expect(summarizeRpc(undefined)).toEqual({ rpcMethods: [], toolNames: [] });
  });
});

describe.each<SampleUpstreamOptions['responseMode']>(['sse', 'json'])('session mode, responseMode=%s', (responseMode) => {
  let upstream: SampleUpstream;
  let client: Client;
  let transport: StreamableHTTPClientTransport;

  beforeAll(async () => {
    upstream = await startSampleUpstream({ responseMode });
    ({ client, transport } = await connectClient(upstream.url));
  });

  afterAll(async () => {
    await client?.close();
    await upstream?.close();
  });

  it('serves on 127.0.0.1 under /mcp and creates a session', () => {
    expect(upstream.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    expect(transport.sessionId).toBeTruthy();
    expect(upstream.sessionCount()).toBe(1);
  });

  it('lists all sample tools', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([...SAMPLE_TOOL_NAMES].sort());
  });

  it('adds and lists todos', async () => {
    const added = await client.callTool({ name: 'add_todo', arguments: { title: `buy milk (${responseMode})` } });
    expect(textOf(added)).toMatch(/^Added #\d+ buy milk/);
    const listed = await client.callTool({ name: 'list_todos', arguments: {} });
    expect(textOf(listed)).toContain(`buy milk (${responseMode})`);
  });

  it('exposes a resource and a prompt', async () => {
    const resource = await client.readResource({ uri: SAMPLE_RESOURCE_URI });
    expect(resource.contents[0]?.uri).toBe(SAMPLE_RESOURCE_URI);
    const prompt = await client.getPrompt({ name: SAMPLE_PROMPT_NAME });
    expect(prompt.messages).toHaveLength(1);
  });

  it('streams progress notifications for slow_progress (sse only)', async () => {
    const progress: Progress[] = [];
    const result = await client.callTool({ name: 'slow_progress', arguments: { steps: 3, delayMs: 20 } }, undefined, {
      onprogress: (p) => progress.push(p),
    });
    expect(textOf(result)).toBe('Done after 3 steps');
    if (responseMode === 'sse') {
      expect(progress.map((p) => p.progress)).toEqual([1, 2, 3]);
      expect(progress.every((p) => p.total === 3)).toBe(true);
    } else {
      // A single JSON response has nowhere to carry notifications; the SDK drops them.
      expect(progress).toEqual([]);
    }
  });

  it('records every request before the SDK sees it', () => {
    const methods = upstream.requests.flatMap((r) => r.rpcMethods);
    expect(methods).toEqual(
      expect.arrayContaining(['initialize', 'notifications/initialized', 'tools/list', 'tools/call', 'resources/read', 'prompts/get']),
    );
    const toolNames = upstream.requests.flatMap((r) => r.toolNames);
    expect(toolNames).toEqual(['add_todo', 'list_todos', 'slow_progress']);

    const addCall = upstream.requests.find((r) => r.toolNames.includes('add_todo'));
    expect(addCall?.method).toBe('POST');
    expect(addCall?.path).toBe('/mcp');
    expect(addCall?.headers['mcp-session-id']).toBe(transport.sessionId);
    expect(addCall?.body).toMatchObject({ method: 'tools/call', params: { name: 'add_todo' } });

    // The client opens the standalone GET stream after initialization.
    expect(upstream.requests.some((r) => r.method === 'GET')).toBe(true);
    // Nothing in this suite sends credentials; gateway e2e tests make the same assertion.
    expect(upstream.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it('pushes notifications on the standalone GET stream via notifyAll()', async () => {
    let listChanged = 0;
    let logs = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanged++;
    });
    client.setNotificationHandler(LoggingMessageNotificationSchema, () => {
      logs++;
    });
    // The GET stream may still be attaching; notifications sent before that are dropped, so retry.
    await waitFor(() => listChanged > 0 && logs > 0, 5_000, () => upstream.notifyAll());
  });

  it('rejects unknown sessions and unparseable bodies, but still logs them', async () => {
    upstream.clearLog();
    const unknown = await fetch(upstream.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': 'no-such-session',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(unknown.status).toBe(404);

    const garbage = await fetch(upstream.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect(garbage.status).toBe(400);

    expect(upstream.requests.map((r) => r.rpcMethods)).toEqual([['tools/list'], []]);
    expect(upstream.requests[1]?.body).toBe('{nope');
  });

  it('terminates the session on DELETE', async () => {
    await transport.terminateSession();
    expect(upstream.requests.at(-1)?.method).toBe('DELETE');
    await waitFor(() => upstream.sessionCount() === 0);
  });
});

describe.each<SampleUpstreamOptions['responseMode']>(['sse', 'json'])('stateless mode, responseMode=%s', (responseMode) => {
  let upstream: SampleUpstream;
  let client: Client;
  let transport: StreamableHTTPClientTransport;

  beforeAll(async () => {
    upstream = await startSampleUpstream({ responseMode, stateless: true });
    ({ client, transport } = await connectClient(upstream.url));
  });

  afterAll(async () => {
    await client?.close();
    await upstream?.close();
  });

  it('connects and lists tools without a session', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining([...SAMPLE_TOOL_NAMES]));
    expect(transport.sessionId).toBeUndefined();
    expect(upstream.sessionCount()).toBe(0);
  });

  it('keeps todo state across per-request servers', async () => {
    await client.callTool({ name: 'add_todo', arguments: { title: 'stateless todo' } });
    const listed = await client.callTool({ name: 'list_todos', arguments: {} });
    expect(textOf(listed)).toContain('stateless todo');
    expect(upstream.requests.some((r) => r.headers['mcp-session-id'] !== undefined)).toBe(false);
  });
});
