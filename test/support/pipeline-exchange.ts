import { once } from 'node:events';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { Refusal } from '../../src/errors.js';
import { GatewayResponse } from '../../src/http/gateway-response.js';
import { McpExchange } from '../../src/http/pipeline/exchange.js';
import type { Stage } from '../../src/http/pipeline/stage.js';
import { RequestRecord, type ClientOrigin } from '../../src/observability/request-record.js';

/**
 * Real Node HTTP objects for one request, with no network: the pipeline's stages get the
 * IncomingMessage and ServerResponse they get in the gateway, filled in as Node's parser would
 * fill them, and whatever the response writes is kept as bytes on an in-memory socket and read
 * back as a response (status line, headers, de-chunked body).
 */

/** Where the record says the request came from: through a trusted proxy, so every X-Forwarded-* is set. */
export const TRUSTED_ORIGIN: ClientOrigin = {
  address: '203.0.113.9',
  forwardedFor: '203.0.113.9, 10.0.0.2',
  proto: 'https',
  host: 'gateway.example.test',
  viaTrustedProxy: true,
};

export interface MessageSpec {
  /** Lower-case names; rawHeaders is built from them as the parser would. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Pushed as the message's body (an object as its JSON); several buffers arrive as several chunks. */
  readonly body?: string | Buffer | readonly Buffer[] | object;
  /** The connection the message came on (a token admitted on it is remembered per connection). */
  readonly socket?: Socket;
  /** The body is still on its way: nothing more is pushed, and the message is not complete (push the rest, then null). */
  readonly arriving?: boolean;
}

export interface RequestSpec extends MessageSpec {
  readonly method?: string;
  readonly url?: string;
}

/** A request as Node's parser hands it to the listener: head parsed, the body already pushed and complete. */
export function clientRequest(spec: RequestSpec = {}): IncomingMessage {
  const req = message(spec);
  req.method = spec.method ?? 'POST';
  req.url = spec.url ?? '/mcp';
  return req;
}

/** An upstream's answer as the forwarder resolves with it: status and head parsed, its body pushed. */
export function upstreamAnswer(status: number, spec: MessageSpec = {}): IncomingMessage {
  const answer = message(spec);
  answer.statusCode = status;
  answer.statusMessage = '';
  return answer;
}

function message(spec: MessageSpec): IncomingMessage {
  const msg = new IncomingMessage(spec.socket ?? new Socket());
  msg.httpVersionMajor = 1;
  msg.httpVersionMinor = 1;
  msg.httpVersion = '1.1';
  const headers = { ...spec.headers };
  msg.headers = headers;
  msg.rawHeaders = Object.entries(headers).flat();
  for (const chunk of chunksOf(spec.body)) msg.push(chunk);
  if (spec.arriving) return msg;
  msg.push(null);
  msg.complete = true;
  return msg;
}

function chunksOf(body: MessageSpec['body']): Buffer[] {
  if (body === undefined) return [];
  if (typeof body === 'string') return [Buffer.from(body)];
  if (Buffer.isBuffer(body)) return [body];
  if (Array.isArray(body) && body.every((part) => Buffer.isBuffer(part))) return [...(body as Buffer[])];
  return [Buffer.from(JSON.stringify(body))];
}

/** A connection that keeps every byte written to it; its 'close' closes the response, as a client hanging up would. */
export class WireSocket extends Duplex {
  readonly chunks: Buffer[] = [];
  /** Called as each chunk is written: a test can look at the world at the moment the client would. */
  onWrite: ((chunk: Buffer) => void) | undefined = undefined;

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const bytes = Buffer.from(chunk);
    this.chunks.push(bytes);
    this.onWrite?.(bytes);
    done();
  }

  override _read(): void {}

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** A response as the client reads it off the wire. */
export interface WrittenResponse {
  readonly status: number;
  /** Lower-case names; a repeated header's values joined with ', '. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** The body was delimited and is all there (content-length reached, or the last chunk seen). */
  readonly complete: boolean;
}

/** Parses what a ServerResponse wrote; undefined while nothing (not even the head) was written. */
export function parseWritten(bytes: Buffer): WrittenResponse | undefined {
  const text = bytes.toString('latin1');
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd === -1) return undefined;
  const [statusLine, ...lines] = text.slice(0, headEnd).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine!)?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  const raw = bytes.subarray(Buffer.byteLength(text.slice(0, headEnd + 4), 'latin1'));
  if (headers['transfer-encoding'] === 'chunked') return { status, headers, ...dechunk(raw) };
  const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  const body = length === undefined ? raw : raw.subarray(0, length);
  return { status, headers, body: body.toString('utf8'), complete: length === undefined || raw.length >= length };
}

function dechunk(raw: Buffer): { body: string; complete: boolean } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', at);
    if (lineEnd === -1) return { body: Buffer.concat(parts).toString('utf8'), complete: false };
    const size = parseInt(raw.subarray(at, lineEnd).toString('latin1'), 16);
    if (size === 0) return { body: Buffer.concat(parts).toString('utf8'), complete: true };
    parts.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** One request on an MCP route: the exchange the stages share, its response and the wire it writes to. */
export class TestExchange {
  readonly exchange: McpExchange;
  readonly req: IncomingMessage;
  readonly res: GatewayResponse;
  readonly wire = new WireSocket();
  readonly record: RequestRecord;

  constructor(spec: RequestSpec = {}, origin: ClientOrigin = TRUSTED_ORIGIN) {
    this.req = clientRequest(spec);
    // The listener's own response class, holding the request's record as it does in the gateway.
    this.res = new GatewayResponse(this.req);
    this.record = this.res.record = new RequestRecord(`req-${Math.random().toString(36).slice(2)}`, origin);
    this.res.assignSocket(this.wire as unknown as Socket);
    this.exchange = new McpExchange(this.req, this.res, this.record, this.req.method!);
  }

  /** What the client has received so far; undefined while nothing was written. */
  get written(): WrittenResponse | undefined {
    return parseWritten(this.wire.bytes);
  }

  /** The response once it has ended (answers may be written a turn later: see endTogether). */
  async finished(): Promise<WrittenResponse> {
    if (!this.res.writableFinished) await once(this.res, 'finish');
    return this.written!;
  }

  /** The client hangs up: resolves once the response has closed (as when the connection ends), its streams with it. */
  async hangUp(): Promise<void> {
    const closed = this.res.closed ? undefined : once(this.res, 'close');
    this.wire.destroy();
    await closed;
  }
}

/** The refusal a stage refuses with, whether it throws it or returns a promise rejected with it. */
export async function refusalOfStage(stage: Stage, exchange: McpExchange): Promise<Refusal> {
  let pending: void | Promise<void>;
  try {
    pending = stage(exchange);
  } catch (error) {
    if (error instanceof Refusal) return error;
    throw error;
  }
  if (pending === undefined) throw new Error('expected a Refusal, the stage passed synchronously');
  try {
    await pending;
  } catch (error) {
    if (error instanceof Refusal) return error;
    throw error;
  }
  throw new Error('expected a Refusal, the stage passed');
}

/** One turn of the event loop: what Node writes is corked until the next tick, answers may wait for the check phase. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
