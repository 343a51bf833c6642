/**
 * Child process: the client side of the idle-streams measurement, in a process of its own so its
 * memory is never counted with what is measured. Opens `count` MCP sessions (initialize through
 * the endpoint, so the gateway binds each to the caller) and one GET SSE stream per session,
 * each on its own connection, then holds them all idle until told to stop.
 *
 * Usage: stream-clients-process.js '<{"url": …, "token": …, "count": N}>'. Prints JSON progress
 * lines and finally {"done": true, "opened": N, "failed": M, "firstError": …}.
 */
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import { exitWithParent } from './child-lifetime.js';
import { mcpHeaders } from './mcp.js';

interface Options {
  readonly url: string;
  readonly token?: string;
  readonly count: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const url = new URL(options.url);
/** Sessions are set up over a few pooled connections; each stream then gets a connection of its own. */
const SETUP_CONCURRENCY = 32;
const setupAgent = new Agent({ keepAlive: true, maxSockets: SETUP_CONCURRENCY });
const held: { req: ClientRequest; res: IncomingMessage }[] = [];
let opened = 0;
let failed = 0;
let firstError: string | undefined;

const say = (value: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(value)}\n`);

function send(method: 'POST' | 'GET', headers: Record<string, string>, body: string | undefined, agent: Agent | false): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method, agent, headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => resolve({ req, res }),
    );
    req.once('error', reject);
    req.end(body);
  });
}

async function openOne(i: number): Promise<void> {
  const initialize = JSON.stringify({
    jsonrpc: '2.0',
    id: i,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench-stream-client', version: '1' } },
  });
  const init = await send('POST', mcpHeaders(options.token), initialize, setupAgent);
  init.res.resume();
  const sessionId = init.res.headers['mcp-session-id'];
  if (init.res.statusCode !== 200 || typeof sessionId !== 'string') throw new Error(`initialize answered ${init.res.statusCode}`);
  await new Promise((resolve) => init.res.once('end', resolve));
  const headers = { ...mcpHeaders(options.token, sessionId), accept: 'text/event-stream' };
  delete (headers as Record<string, string | undefined>)['content-type'];
  const stream = await send('GET', headers, undefined, false);
  if (stream.res.statusCode !== 200) {
    stream.res.resume();
    throw new Error(`GET stream answered ${stream.res.statusCode}`);
  }
  // Idle, but drained: whatever the server says (a comment line) is read and dropped.
  stream.res.on('data', () => undefined);
  stream.res.once('close', () => {
    if (!stopping) say({ closed: true, index: i });
  });
  held.push(stream);
}

let stopping = false;
exitWithParent(async () => {
  stopping = true;
  for (const { req } of held) req.destroy();
  setupAgent.destroy();
});

let next = 0;
async function worker(): Promise<void> {
  while (next < options.count) {
    const i = next++;
    try {
      await openOne(i);
      opened++;
      if (opened % 1000 === 0) say({ opened });
    } catch (error) {
      failed++;
      firstError ??= (error as Error).message;
    }
  }
}
await Promise.all(Array.from({ length: SETUP_CONCURRENCY }, () => worker()));
setupAgent.destroy();
say({ done: true, opened, failed, ...(firstError ? { firstError } : {}) });
