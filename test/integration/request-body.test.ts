import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isRefusal } from '../../src/errors.js';
import { readBody, receivedWhole } from '../../src/http/body.js';
import { destroyRawConnections, RawConnection, rawRequest } from '../support/raw-http.js';

/**
 * readBody over real sockets: a body that came with its head is taken at once (receivedWhole),
 * one still arriving is read with listeners; either way the bytes are the same, limits hold, and
 * the connection stays usable for the next request.
 */
let server: Server | undefined;
afterEach(async () => {
  destroyRawConnections();
  if (server) await new Promise((resolve) => server!.close(resolve));
  server = undefined;
});

interface Seen {
  readonly wholeAfterIo: boolean;
  /** Whether readBody listened for 'data' (it need not when the body is all there). */
  readonly listened: boolean;
  readonly body?: string;
  readonly refusal?: string;
}

/**
 * A server that, after waiting for I/O once (as the gateway's handler waits for the session
 * check's Redis round trip), reads the body and echoes what it saw. With `atOnce`, it reads the
 * body after microtasks only (as with the in-memory store), when Node's parser has not pushed
 * the body yet: `wholeAfterIo` then says whether the body was complete at that moment.
 */
async function startEcho(maxBytes: number, atOnce = false): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      if (atOnce) await Promise.resolve();
      else await new Promise((resolve) => setImmediate(resolve));
      const wholeAfterIo = req.complete;
      let listened = false;
      req.on('newListener', (event) => (listened ||= event === 'data'));
      try {
        const body = await readBody(req, maxBytes);
        seen.push({ wholeAfterIo, listened, body: body.toString() });
        res.end(`got ${body.length}`);
      } catch (error) {
        if (!isRefusal(error)) throw error;
        seen.push({ wholeAfterIo, listened, refusal: error.code });
        res.writeHead(error.shape.status).end(error.code);
      }
    })();
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, seen };
}

const post = (body: string, extra: [string, string][] = []) =>
  rawRequest('POST /mcp HTTP/1.1', [['Host', 'x'], ['Content-Type', 'application/json'], ['Content-Length', String(Buffer.byteLength(body))], ...extra], body);

describe('reading a request body', () => {
  it('takes a body that came with its head at once, and the connection serves the next request', async () => {
    const { port, seen } = await startEcho(1024);
    const connection = await RawConnection.open(port);
    connection.write(post('{"jsonrpc":"2.0","id":1,"method":"ping"}'));
    connection.write(post('{"jsonrpc":"2.0","id":2,"method":"ping"}'));
    connection.write(post(''));
    const responses = await connection.nextResponses(3);
    expect(responses.map((r) => r.body)).toEqual(['got 40', 'got 40', 'got 0']);
    expect(seen[0]).toEqual({ wholeAfterIo: true, listened: false, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
    expect(seen[1]?.body).toContain('"id":2');
    expect(seen[2]).toEqual({ wholeAfterIo: true, listened: false, body: '' });
    expect(connection.closed).toBe(false);
  });

  it('takes every chunk of a chunked body that came whole with its head (one read() gives one chunk since Node 26)', async () => {
    const { port, seen } = await startEcho(4096);
    const body = `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"${'x'.repeat(2500)}"}}`;
    const chunks = body.match(/[^]{1,1000}/g)!.map((chunk) => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('');
    const connection = await RawConnection.open(port);
    connection.write(rawRequest('POST / HTTP/1.1', [['Host', 'x'], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']], `${chunks}0\r\n\r\n`));
    const [response] = await connection.nextResponses(1);
    expect(response?.body).toBe(`got ${body.length}`);
    expect(seen[0]).toEqual({ wholeAfterIo: true, listened: false, body });
  });

  it('takes a body that came with its head without listening, even when asked for it before the parser reached it', async () => {
    const { port, seen } = await startEcho(1024, true);
    const connection = await RawConnection.open(port);
    connection.write(post('{"jsonrpc":"2.0","id":1,"method":"ping"}'));
    connection.write(post('{"jsonrpc":"2.0","id":2,"method":"ping"}'));
    const responses = await connection.nextResponses(2);
    expect(responses.map((r) => r.body)).toEqual(['got 40', 'got 40']);
    expect(seen).toEqual([
      { wholeAfterIo: false, listened: false, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' },
      { wholeAfterIo: false, listened: false, body: '{"jsonrpc":"2.0","id":2,"method":"ping"}' },
    ]);
  });

  it('reads a body still arriving, byte for byte', async () => {
    const { port, seen } = await startEcho(1024);
    const connection = await RawConnection.open(port);
    const text = post('{"jsonrpc":"2.0","id":"é","method":"ping"}');
    const head = text.indexOf('\r\n\r\n') + 4;
    connection.write(text.slice(0, head + 5));
    await new Promise((resolve) => setTimeout(resolve, 50));
    connection.write(text.slice(head + 5));
    const [response] = await connection.nextResponses(1);
    expect(seen[0]).toEqual({ wholeAfterIo: false, listened: true, body: '{"jsonrpc":"2.0","id":"é","method":"ping"}' });
    expect(response?.body).toBe(`got ${Buffer.byteLength('{"jsonrpc":"2.0","id":"é","method":"ping"}')}`);
  });

  it('refuses a body over the limit whether it came whole or in parts, and can still answer on the connection', async () => {
    const { port, seen } = await startEcho(16);
    // Chunked: no Content-Length to refuse it early, so the limit is checked on the bytes.
    const chunked = (body: string) => rawRequest('POST /mcp HTTP/1.1', [['Host', 'x'], ['Transfer-Encoding', 'chunked']], `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
    const whole = await RawConnection.open(port);
    whole.write(chunked('x'.repeat(17)));
    expect((await whole.nextResponses(1))[0]?.status).toBe(413);
    const parts = await RawConnection.open(port);
    const text = chunked('y'.repeat(40));
    parts.write(text.slice(0, text.indexOf('\r\n\r\n') + 8));
    await new Promise((resolve) => setTimeout(resolve, 50));
    parts.write(text.slice(text.indexOf('\r\n\r\n') + 8));
    expect((await parts.nextResponses(1))[0]?.status).toBe(413);
    expect(seen).toEqual([
      { wholeAfterIo: true, listened: false, refusal: 'payload_too_large' },
      { wholeAfterIo: false, listened: true, refusal: 'payload_too_large' },
    ]);
  });

  it('takes nothing from a stream someone is already reading', async () => {
    let answer: unknown = 'not checked';
    server = createServer((req, res) => {
      req.on('data', () => {});
      req.on('end', () => {
        answer = receivedWhole(req, 1024);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const connection = await RawConnection.open((server.address() as AddressInfo).port);
    connection.write(post('{}'));
    await connection.nextResponses(1);
    expect(answer).toBeUndefined();
  });
});
