/**
 * HTTP/1.1 spoken byte by byte over a raw socket, for tests about what a client can do that
 * fetch never would: oversized or slow request heads, ambiguous framing (smuggling), odd
 * request targets. Every connection opened here is tracked, so `destroyRawConnections()` in an
 * afterEach leaves nothing open.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

const open = new Set<RawConnection>();

/** Destroys every connection this module opened and has not yet seen closed. */
export function destroyRawConnections(): void {
  for (const connection of open) connection.destroy();
  open.clear();
}

/** One parsed response from the bytes a server sent. */
export interface RawResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ', '. */
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface RawConnectOptions {
  /** Connect with TLS, trusting this CA (PEM). */
  readonly tlsCa?: string;
}

/** A client connection that records everything the server sends and when it closed. */
export class RawConnection {
  private readonly chunks: Buffer[] = [];
  private closedAt: number | undefined;
  private readonly waiters = new Set<() => void>();
  /** When the connection was established (ms, Date.now()). */
  readonly connectedAt = Date.now();

  private constructor(readonly socket: Socket) {
    open.add(this);
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.notify();
    });
    // A reset or EPIPE is one way a server closes on a client: record it, never throw.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closedAt = Date.now();
      open.delete(this);
      this.notify();
    });
  }

  /** Connects to the origin of `url` (http: or https:, or a port on 127.0.0.1). */
  static open(target: string | number, options: RawConnectOptions = {}): Promise<RawConnection> {
    const { hostname, port } = typeof target === 'number' ? { hostname: '127.0.0.1', port: String(target) } : new URL(target);
    const host = hostname.replace(/^\[|\]$/g, '');
    return new Promise((resolve, reject) => {
      const socket =
        options.tlsCa !== undefined
          ? tlsConnect({ host, port: Number(port), ca: options.tlsCa })
          : netConnect({ host, port: Number(port) });
      const ready = options.tlsCa !== undefined ? 'secureConnect' : 'connect';
      socket.once(ready, () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Writes bytes; a write to a connection the server already closed is ignored. */
  write(data: string | Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(data, () => undefined);
  }

  /** Everything received so far, as latin1 text (byte for byte). */
  get text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  /** ms from connecting until the server closed (undefined while open). */
  get openForMs(): number | undefined {
    return this.closedAt === undefined ? undefined : this.closedAt - this.connectedAt;
  }

  /** The complete responses received so far, in order. */
  get responses(): RawResponse[] {
    return parseResponses(this.text).responses;
  }

  /**
   * Status codes of every status line received so far, complete responses or not (responses
   * follow each other without a separator, so any `HTTP/1.x NNN ` counts).
   */
  get statuses(): number[] {
    return [...this.text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((match) => Number(match[1]));
  }

  /** Resolves true once `predicate` holds (checked on every chunk and on close), false after `timeoutMs`. */
  waitUntil(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
    if (predicate()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!predicate() && !this.closed) return;
        finish(predicate());
      };
      const timer = setTimeout(() => finish(predicate()), timeoutMs);
      const finish = (result: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(result);
      };
      this.waiters.add(check);
    });
  }

  /** Resolves with the first `count` complete responses, or throws after `timeoutMs`. */
  async nextResponses(count: number, timeoutMs = 5_000): Promise<RawResponse[]> {
    const ok = await this.waitUntil(() => this.responses.length >= count, timeoutMs);
    if (!ok) throw new Error(`expected ${count} response(s), got ${this.responses.length}; received: ${JSON.stringify(this.text.slice(0, 400))}`);
    return this.responses.slice(0, count);
  }

  /** Resolves true once the server closed the connection, false if still open after `timeoutMs`. */
  waitForClose(timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => this.closed, timeoutMs);
  }

  /**
   * Sends `data` one byte every `intervalMs` (a slowloris client) until it is all sent or the
   * server closes. Resolves with the number of bytes sent.
   */
  drip(data: string, intervalMs: number): Promise<number> {
    return new Promise((resolve) => {
      let sent = 0;
      const timer = setInterval(() => {
        if (this.closed || sent >= data.length) {
          clearInterval(timer);
          resolve(sent);
          return;
        }
        this.write(data[sent]!);
        sent++;
      }, intervalMs);
    });
  }

  destroy(): void {
    this.socket.destroy();
    open.delete(this);
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/**
 * Parses as many complete HTTP/1.1 responses as `text` holds (Content-Length or chunked
 * bodies; a response without either, as after `Connection: close`, runs to the end of text).
 */
export function parseResponses(text: string): { responses: RawResponse[]; rest: string } {
  const responses: RawResponse[] = [];
  let rest = text;
  for (;;) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (!rest.startsWith('HTTP/') || headEnd === -1) break;
    const [statusLine, ...lines] = rest.slice(0, headEnd).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    let after = rest.slice(headEnd + 4);
    let body: string;
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (after.length < length) break;
      body = after.slice(0, length);
      after = after.slice(length);
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const decoded = decodeChunked(after);
      if (!decoded) break;
      body = decoded.body;
      after = decoded.rest;
    } else if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      body = '';
    } else {
      body = after;
      after = '';
    }
    responses.push({ status, headers, body });
    rest = after;
  }
  return { responses, rest };
}

function decodeChunked(text: string): { body: string; rest: string } | undefined {
  let body = '';
  let at = 0;
  for (;;) {
    const lineEnd = text.indexOf('\r\n', at);
    if (lineEnd === -1) return undefined;
    const size = parseInt(text.slice(at, lineEnd), 16);
    if (Number.isNaN(size)) return undefined;
    at = lineEnd + 2;
    if (size === 0) {
      const end = text.indexOf('\r\n', at);
      return end === -1 ? undefined : { body, rest: text.slice(end + 2) };
    }
    if (text.length < at + size + 2) return undefined;
    body += text.slice(at, at + size);
    at += size + 2;
  }
}

/** A request head (and optional body) with CRLF line ends, written exactly as given. */
export function rawRequest(requestLine: string, headers: readonly (readonly [string, string])[], body = ''): string {
  return `${requestLine}\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n${body}`;
}

/**
 * Opens a connection, sends `data`, and resolves once the server closed it, or sent
 * `untilResponses` complete responses (when given), or `timeoutMs` passed.
 */
export async function sendRaw(
  target: string | number,
  data: string | Buffer,
  timeoutMs = 3_000,
  options: RawConnectOptions & { untilResponses?: number } = {},
): Promise<RawConnection> {
  const connection = await RawConnection.open(target, options);
  connection.write(data);
  const enough = options.untilResponses;
  await connection.waitUntil(() => connection.closed || (enough !== undefined && connection.responses.length >= enough), timeoutMs);
  return connection;
}
