/**
 * A bare node:http upstream whose answers the test writes, byte for byte: for tests of what the
 * gateway does with answers no real MCP server would send (duplicate keys, other charsets, a
 * stream request answered with an endless JSON body). Every request is recorded with the moment
 * its connection closed, so a test can tell that the gateway let go of it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Writes the answer to one request; `body` is the request body as text. */
export type ScriptedAnswer = (res: ServerResponse, request: ScriptedRequest) => void;

export interface ScriptedRequest {
  readonly method: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  /** Resolves once the request's response is closed: finished, or its connection gone. */
  readonly closed: Promise<void>;
  /** Whether the response was ended by the upstream (false: the connection was closed on it). */
  readonly finished: () => boolean;
}

export interface ScriptedUpstream {
  readonly url: string;
  /** What the next requests are answered with (default: 202, no body). */
  answer: ScriptedAnswer;
  readonly requests: ScriptedRequest[];
  close(): Promise<void>;
}

export async function startScriptedUpstream(): Promise<ScriptedUpstream> {
  const requests: ScriptedRequest[] = [];
  const upstream: { answer: ScriptedAnswer } = { answer: (res) => res.writeHead(202).end() };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
      const request: ScriptedRequest = { method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), closed, finished: () => res.writableFinished };
      requests.push(request);
      upstream.answer(res, request);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    get answer() {
      return upstream.answer;
    },
    set answer(answer: ScriptedAnswer) {
      upstream.answer = answer;
    },
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Answers with these bytes and this content type, whole. */
export function answerWith(contentType: string, bytes: string | Buffer, status = 200): ScriptedAnswer {
  return (res) => {
    const body = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
    res.writeHead(status, { 'content-type': contentType, 'content-length': body.length });
    res.end(body);
  };
}

/**
 * Answers with a stream of chunks, `gapMs` apart, that never ends (unless `end`): each chunk is
 * written once the previous one is, as long as the connection stays open.
 */
export function answerStreaming(contentType: string, chunks: readonly (string | Buffer)[], options: { gapMs?: number; end?: boolean; repeatLast?: boolean } = {}): ScriptedAnswer {
  return (res) => {
    res.writeHead(200, { 'content-type': contentType });
    res.flushHeaders();
    let next = 0;
    const timer = setInterval(() => {
      if (res.destroyed || res.writableEnded) return clearInterval(timer);
      if (next < chunks.length) res.write(chunks[next++]!);
      else if (options.repeatLast && chunks.length > 0) res.write(chunks[chunks.length - 1]!);
      else {
        clearInterval(timer);
        if (options.end) res.end();
      }
    }, options.gapMs ?? 20);
    res.once('close', () => clearInterval(timer));
  };
}
