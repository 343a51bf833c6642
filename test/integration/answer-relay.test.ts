import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { RelayPlan } from '../../src/http/pipeline/relay-plan.js';
import { relayUpstreamResponse } from '../../src/http/pipeline/stages/relay.js';
import { ListFilter } from '../../src/mcp/list-filter.js';
import { SessionBindings } from '../../src/mcp/sessions.js';
import { MemoryStore } from '../../src/store/memory.js';
import { closeLocalServers, listenLocal } from '../support/local-servers.js';

/**
 * relayUpstreamResponse on real sockets, for JSON answers: one that has arrived whole when the
 * relay starts is taken in one read (no listener on the upstream answer), one still arriving is
 * read as it comes; either way the client gets the upstream's bytes, filtered where they hold a
 * list. A front server forwards each request with node:http and relays the answer, as the
 * gateway does after its forwarder's promise resolves.
 */
const agents: Agent[] = [];
const stores: MemoryStore[] = [];

afterEach(async () => {
  for (const agent of agents.splice(0)) agent.destroy();
  for (const store of stores.splice(0)) await store.close();
  await closeLocalServers();
});

const TOOLS = [{ name: 'visible_tool' }, { name: 'secret_tool' }];
const answer = (id: string) => JSON.stringify({ jsonrpc: '2.0', id, result: { tools: TOOLS } });

/** Answers JSON, whole or (with ?parts) its first 10 bytes, then the rest 50 ms later. */
function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? 'x';
  const bytes = Buffer.from(answer(id));
  if (req.url?.includes('chunked')) {
    // Several chunks written at once: they arrive together, and are buffered as several chunks.
    res.writeHead(200, { 'content-type': 'application/json' });
    for (let at = 0; at < bytes.length; at += 16) res.write(bytes.subarray(at, at + 16));
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length });
  if (!req.url?.includes('parts')) {
    res.end(bytes);
    return;
  }
  res.write(bytes.subarray(0, 10));
  setTimeout(() => res.end(bytes.subarray(10)), 50);
}

function exchange(listFilter: ListFilter | undefined): RelayPlan {
  return {
    routeName: 'r',
    method: 'POST',
    principalKey: 'p',
    protocolVersion: '2025-06-18',
    sessionId: undefined,
    longLived: false,
    tokenExpiresAtMs: Date.now() + 60_000,
    listFilter,
    toolCallIds: undefined,
    stateless: false,
    resourceUpdateVisible: undefined,
    listVisible: () => true,
    hidesNotifications: false,
  };
}

/** The front server; `listened` records whether the relay put a 'data' listener on each upstream answer. */
async function front(filter: ListFilter | undefined): Promise<{ url: string; listened: boolean[] }> {
  const upstreamUrl = await listenLocal(createServer(upstreamHandler));
  const agent = new Agent({ keepAlive: true });
  agents.push(agent);
  const store = new MemoryStore();
  stores.push(store);
  const sessions = new SessionBindings(store, { idleTimeoutMs: 60_000, maxPerPrincipal: 8 });
  const listened: boolean[] = [];
  const url = await listenLocal(
    createServer((req, res) => {
      void (async () => {
        const upstream = await new Promise<IncomingMessage>((resolve) => request(upstreamUrl + (req.url ?? '/'), { agent }, resolve).end());
        let data = false;
        upstream.on('newListener', (event) => (data ||= event === 'data'));
        await relayUpstreamResponse(upstream, res, exchange(filter), {
          sessions,
          streams: { opened: () => undefined, closed: () => undefined },
        });
        listened.push(data);
      })();
    }),
  );
  return { url, listened };
}

describe('relaying a JSON answer', () => {
  it('takes one that has arrived whole in one read, and relays its bytes as they are', async () => {
    const { url, listened } = await front(undefined);
    const response = await fetch(`${url}/?id=one`);
    expect(await response.text()).toBe(answer('one'));
    expect(listened).toEqual([false]);
  });

  it('relays every chunk of one that arrived whole in several (one read() gives one chunk since Node 26)', async () => {
    for (const filter of [undefined, new ListFilter({ tool: (name) => !name.startsWith('secret_') })]) {
      const { url } = await front(filter);
      const text = await (await fetch(`${url}/?id=five&chunked`)).text();
      if (filter) expect((JSON.parse(text) as { result: { tools: { name: string }[] } }).result.tools.map((tool) => tool.name)).toEqual(['visible_tool']);
      else expect(text).toBe(answer('five'));
    }
  });

  it('reads one still arriving as it comes, byte for byte', async () => {
    const { url, listened } = await front(undefined);
    const response = await fetch(`${url}/?id=two&parts`);
    expect(await response.text()).toBe(answer('two'));
    expect(listened).toEqual([true]);
  });

  it('filters a list that has arrived whole without listening, and one still arriving as it comes', async () => {
    const { url, listened } = await front(new ListFilter({ tool: (name) => !name.startsWith('secret_') }));
    const whole = (await (await fetch(`${url}/?id=three`)).json()) as { result: { tools: { name: string }[] } };
    const parts = (await (await fetch(`${url}/?id=four&parts`)).json()) as { result: { tools: { name: string }[] } };
    expect(whole.result.tools.map((tool) => tool.name)).toEqual(['visible_tool']);
    expect(parts.result.tools.map((tool) => tool.name)).toEqual(['visible_tool']);
    expect(listened).toEqual([false, true]);
  });
});
