import { Agent, createServer, get, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ListFilter } from '../../src/mcp/list-filter.js';
import { ServerMessageFilter } from '../../src/mcp/server-message-filter.js';
import { MAX_SSE_EVENT_BYTES, SseListFilter } from '../../src/mcp/sse-filter.js';
import { relayStream, type RelayedStream, type RelayOptions, type StreamGate } from '../../src/proxy/stream-gate.js';
import { closeLocalServers, listenLocal } from '../support/local-servers.js';

/**
 * The relay on real sockets, without the rest of the gateway: an upstream server, a front server
 * that forwards to it and relays the answer with relayStream, and a plain HTTP client.
 */
interface Harness {
  readonly url: string;
  /** The gate of the latest relayed answer. */
  gate(): StreamGate | undefined;
  readonly registry: { opened: RelayedStream[]; closed: RelayedStream[] };
}

const agents: Agent[] = [];

afterEach(async () => {
  for (const agent of agents.splice(0)) agent.destroy();
  await closeLocalServers();
});

async function harness(
  upstreamHandler: (req: IncomingMessage, res: ServerResponse) => void,
  options: { filter?: () => SseListFilter; beforeRelay?: (res: ServerResponse, upstream: IncomingMessage) => Promise<void> } = {},
): Promise<Harness> {
  const upstreamUrl = await listenLocal(createServer(upstreamHandler));
  const agent = new Agent({ keepAlive: true });
  agents.push(agent);
  let gate: StreamGate | undefined;
  const registry = { opened: [] as RelayedStream[], closed: [] as RelayedStream[] };
  const front = createServer((req, res) => {
    request(upstreamUrl, { agent }, async (upstream) => {
      await options.beforeRelay?.(res, upstream);
      if (!res.closed) {
        res.writeHead(upstream.statusCode ?? 502, { 'content-type': String(upstream.headers['content-type']) });
        res.flushHeaders();
      }
      const relayOptions: RelayOptions = {
        closeAtMs: Number.POSITIVE_INFINITY,
        filter: options.filter?.(),
        registry: { opened: (s) => registry.opened.push(s), closed: (s) => registry.closed.push(s) },
        listening: req.method === 'GET',
      };
      gate = relayStream(upstream, res, relayOptions);
    }).end();
  });
  return { url: await listenLocal(front), gate: () => gate, registry };
}

/** An upstream's SSE answer, head sent. */
const startSse = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream' });

/** Keeps only tools not named secret_*: a filter that lets plain events through untouched. */
const hidingFilter = () => new SseListFilter(new ServerMessageFilter(new ListFilter({ tool: (name) => !name.startsWith('secret_') }), { markPrivate: false }));

const until = async (done: () => boolean, what: string, timeoutMs = 5_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

function readAll(res: IncomingMessage): Promise<{ body: Buffer; outcome: 'ended' | 'cut' }> {
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => resolve({ body: Buffer.concat(chunks), outcome: 'ended' }));
    res.on('error', () => resolve({ body: Buffer.concat(chunks), outcome: 'cut' }));
    res.on('aborted', () => resolve({ body: Buffer.concat(chunks), outcome: 'cut' }));
  });
}

const openClient = (url: string) => new Promise<IncomingMessage>((resolve, reject) => get(url, resolve).on('error', reject));

describe.each([
  { label: 'unfiltered', filter: undefined },
  { label: 'through the SSE filter', filter: hidingFilter },
])('relayStream, $label', ({ filter }) => {
  it('passes a slow client’s backpressure to the upstream instead of buffering the stream', async () => {
    const event = Buffer.from(`event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"data":"${'x'.repeat(64 * 1024)}"}}\n\n`);
    const events = 512; // 32 MiB: far more than the sockets between the three can hold
    let sent = 0;
    const h = await harness(
      (_req, res) => {
        startSse(res);
        const more = () => {
          while (sent < events) {
            sent += 1;
            if (!res.write(event)) return void res.once('drain', more);
          }
          res.end();
        };
        more();
      },
      { ...(filter ? { filter } : {}) },
    );
    const client = await openClient(h.url);
    client.pause();
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Without backpressure the relay would have read the whole stream into the client's buffer.
    expect(sent).toBeLessThan(events * 0.75);
    client.resume();
    const { body, outcome } = await readAll(client);
    expect(outcome).toBe('ended');
    expect(body.equals(Buffer.concat(Array.from({ length: events }, () => event)))).toBe(true);
  });

  it('releases the upstream and the registration when the client has left before the relay starts', async () => {
    let upstreamClosed = false;
    let clientLeft!: () => void;
    const left = new Promise<void>((resolve) => (clientLeft = resolve));
    let checking!: () => void;
    const reached = new Promise<void>((resolve) => (checking = resolve));
    const h = await harness(
      (_req, res) => {
        startSse(res);
        res.write(': open\n\n');
        res.on('close', () => (upstreamClosed = true));
      },
      {
        ...(filter ? { filter } : {}),
        // The answer is still being checked when the client goes.
        beforeRelay: (res) =>
          new Promise<void>((resolve) => {
            res.once('close', () => resolve(clientLeft()));
            checking();
          }),
      },
    );
    const client = get(h.url);
    client.on('error', () => {});
    // The client goes once the answer is being checked (and the front watches for its leaving).
    await reached;
    client.destroy();
    await left;
    await until(() => upstreamClosed, 'the upstream stream to be released');
    expect(h.registry.opened).toHaveLength(1);
    expect(h.registry.closed).toEqual(h.registry.opened);
  });

  it('releases the upstream and the registration when the client leaves an idle stream', async () => {
    let upstreamClosed = false;
    const h = await harness(
      (_req, res) => {
        startSse(res);
        res.write(': open\n\n');
        res.on('close', () => (upstreamClosed = true));
      },
      { ...(filter ? { filter } : {}) },
    );
    const client = await openClient(h.url);
    await until(() => h.registry.opened.length === 1, 'the stream to open');
    expect(h.registry.opened[0]!.listening).toBe(true);
    client.destroy();
    await until(() => upstreamClosed, 'the upstream stream to be released');
    await until(() => h.registry.closed.length === 1, 'the registration to be released');
  });

  it('ends the stream cleanly at the gate, and an upstream that dies is a cut, not an end', async () => {
    let upstreamRes: ServerResponse | undefined;
    const h = await harness(
      (_req, res) => {
        upstreamRes = res;
        startSse(res);
        res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n');
      },
      { ...(filter ? { filter } : {}) },
    );
    const first = await openClient(h.url);
    const firstRead = readAll(first);
    await until(() => h.gate() !== undefined, 'the relay');
    h.gate()!.end();
    const ended = await firstRead;
    expect(ended.outcome).toBe('ended');
    expect(ended.body.toString()).toContain('notifications/message');

    const second = await openClient(h.url);
    const secondRead = readAll(second);
    await until(() => upstreamRes !== undefined && h.registry.opened.length === 2, 'the second stream');
    upstreamRes!.socket!.destroy();
    expect((await secondRead).outcome).toBe('cut');
  });
});

describe('relayStream through the SSE filter', () => {
  it('filters each event and cuts a stream whose event grows past the limit', async () => {
    const list = { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'public_tool' }, { name: 'secret_tool' }] } };
    const h = await harness(
      (_req, res) => {
        startSse(res);
        res.write(`event: message\ndata: ${JSON.stringify(list)}\n\n`);
        // One event that never ends, past the filter's limit.
        res.write('data: ');
        const chunk = Buffer.alloc(1024 * 1024, 'x');
        let written = 0;
        const more = () => {
          while (written <= MAX_SSE_EVENT_BYTES) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
        };
        more();
      },
      { filter: hidingFilter },
    );
    const { body, outcome } = await readAll(await openClient(h.url));
    expect(outcome).toBe('cut');
    expect(body.toString()).toContain('public_tool');
    expect(body.toString()).not.toContain('secret_tool');
    expect(body.toString()).not.toContain('xxxx');
  });
});

describe('relayStream when something fails out of the usual order', () => {
  /**
   * A list answer the filter refuses to judge: two `tools` members, which JSON.parse and a client
   * may read differently. (Not a structure too deep to write back: V8 in Node 26 parses and
   * writes 200,000 levels that Node 22's overflowed on.)
   */
  const uncheckableEvent = () => 'data: {"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"public_tool"}],"tools":[{"name":"secret_tool"}]}}';
  const outcomeWithin = (read: Promise<{ outcome: 'ended' | 'cut' }>, ms = 3_000) =>
    Promise.race([read.then((r) => r.outcome), new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), ms))]);

  it('cuts the client when the last, unterminated event cannot be checked as the upstream ends', async () => {
    const h = await harness(
      (_req, res) => {
        startSse(res);
        res.end(uncheckableEvent());
      },
      { filter: hidingFilter },
    );
    const { body, outcome } = await readAll(await openClient(h.url));
    expect(outcome).toBe('cut');
    expect(body.toString()).not.toContain('secret_tool');
  });

  it('cuts the client when the gate ends a stream whose buffered event cannot be checked', async () => {
    // Counts the bytes the filter has taken, so the test ends the gate only once it holds the event.
    let filtered = 0;
    const countingFilter = () => {
      const inner = hidingFilter();
      const write = inner.write.bind(inner);
      inner.write = (chunk, sink) => {
        filtered += chunk.length;
        write(chunk, sink);
      };
      return inner;
    };
    const h = await harness(
      (_req, res) => {
        startSse(res);
        res.write(uncheckableEvent());
      },
      { filter: countingFilter },
    );
    const client = await openClient(h.url);
    const read = readAll(client);
    await until(() => h.gate() !== undefined, 'the relay');
    await until(() => filtered >= Buffer.byteLength(uncheckableEvent()), 'the event to be buffered in the filter');
    expect(() => h.gate()!.end()).not.toThrow();
    expect((await read).outcome).toBe('cut');
  });

  it('cuts the client when the upstream failed before the relay started', async () => {
    const h = await harness(
      (_req, res) => {
        startSse(res);
        res.write(': open\n\n');
        setTimeout(() => res.socket?.destroy(), 50);
      },
      // The answer is still being checked when the upstream goes.
      { beforeRelay: (_res, upstream) => new Promise<void>((resolve) => upstream.once('close', () => resolve())) },
    );
    expect(await outcomeWithin(readAll(await openClient(h.url)))).toBe('cut');
  });
});
