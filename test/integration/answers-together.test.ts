import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { endTogether } from '../../src/http/answers-together.js';
import type { ClientOrigin } from '../../src/http/forwarded.js';
import { GatewayResponse, recordOf } from '../../src/http/gateway-response.js';
import { beginRequest } from '../../src/observability/request-record.js';
import { closeLocalServers, listenLocal } from '../support/local-servers.js';

/**
 * endTogether on real sockets: answers ended in one turn are written in the check phase that
 * follows (not at once), each client gets its own bytes, and a client that left or an answer
 * that fails to write strands none of the others.
 */
afterEach(closeLocalServers);

const LOCAL: ClientOrigin = { address: '127.0.0.1', forwardedFor: '127.0.0.1', proto: 'http', host: undefined, viaTrustedProxy: false };

/** A server that holds requests until `count` have come, then answers them all in one synchronous run. */
async function answeringTogether(count: number, answer: (path: string, res: ServerResponse) => void, seen: { endedAtOnce: boolean[] }): Promise<string> {
  const held: [string, ServerResponse][] = [];
  const server = createServer({ ServerResponse: GatewayResponse }, (req: IncomingMessage, res: GatewayResponse) => {
    res.record = beginRequest(req.headers, LOCAL);
    held.push([req.url ?? '/', res]);
    if (held.length < count) return;
    // In path order, whatever order they came in: each test puts its odd one in the middle.
    held.sort(([a], [b]) => a.localeCompare(b));
    for (const [path, heldRes] of held) answer(path, heldRes);
    seen.endedAtOnce.push(...held.map(([, heldRes]) => heldRes.writableEnded));
  });
  return listenLocal(server as unknown as Server);
}

/** The body a GET receives, or the error that ended it. */
function get(url: string): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', (error) => resolve({ error: error.message }));
    })
      .on('error', (error) => resolve({ error: error.message }))
      .end();
  });
}

function json(res: ServerResponse, length: number): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': length });
}

describe('endTogether', () => {
  it('writes answers ended in one turn after it, each whole, a Buffer or its parts', async () => {
    const seen = { endedAtOnce: [] as boolean[] };
    const origin = await answeringTogether(
      3,
      (path, res) => {
        const body = Buffer.from(`{"path":"${path}"}`);
        json(res, body.length);
        endTogether(res, path === '/parts' ? [body.subarray(0, 4), body.subarray(4)] : body);
      },
      seen,
    );
    const answers = await Promise.all([get(`${origin}/a`), get(`${origin}/b`), get(`${origin}/parts`)]);
    expect(answers).toEqual([
      { status: 200, body: '{"path":"/a"}' },
      { status: 200, body: '{"path":"/b"}' },
      { status: 200, body: '{"path":"/parts"}' },
    ]);
    // Not one was ended in the run that handed them over.
    expect(seen.endedAtOnce).toEqual([false, false, false]);
  });

  it('skips a response destroyed while it waited, and still writes the others', async () => {
    const seen = { endedAtOnce: [] as boolean[] };
    const origin = await answeringTogether(
      3,
      (path, res) => {
        const body = Buffer.from('{}');
        json(res, body.length);
        endTogether(res, body);
        if (path === '/gone') res.destroy();
      },
      seen,
    );
    const [first, gone, last] = await Promise.all([get(`${origin}/a-first`), get(`${origin}/gone`), get(`${origin}/z-last`)]);
    expect(first).toEqual({ status: 200, body: '{}' });
    expect(gone).toHaveProperty('error');
    expect(last).toEqual({ status: 200, body: '{}' });
  });

  it('destroys an answer that fails to write, says why in its access line, and still writes the one after it', async () => {
    const seen = { endedAtOnce: [] as boolean[] };
    let failed: ServerResponse | undefined;
    const origin = await answeringTogether(
      3,
      (path, res) => {
        const body = Buffer.from('{"ok":true}');
        if (path === '/bad') {
          failed = res;
          // A declared length the body does not have: end() throws ERR_HTTP_CONTENT_LENGTH_MISMATCH.
          res.strictContentLength = true;
          json(res, body.length + 5);
        } else {
          json(res, body.length);
        }
        endTogether(res, body);
      },
      seen,
    );
    const [before, bad, after] = await Promise.all([get(`${origin}/a-before`), get(`${origin}/bad`), get(`${origin}/c-after`)]);
    expect(bad).toHaveProperty('error');
    expect(recordOf(failed!)?.refusal).toMatchObject({ code: 'upstream_unreachable', message: expect.stringMatching(/^Upstream answer could not be relayed \(.*content-length/) });
    expect(before).toEqual({ status: 200, body: '{"ok":true}' });
    expect(after).toEqual({ status: 200, body: '{"ok":true}' });
  });
});
