import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BIN } from '../support/gateway-process.js';
import { startBackends, startTestGateway, type Backends, type TestGateway } from '../support/hardening-stack.js';
import { initializeRequest } from '../support/mcp-http.js';
import { destroyRawConnections, sendRaw, type RawConnection } from '../support/raw-http.js';
import { TODO_POLICY } from '../support/stack.js';

/**
 * Request smuggling over a raw socket (issue 6 item 4). A request whose framing two HTTP
 * implementations could read differently (Content-Length with Transfer-Encoding, two
 * Content-Lengths, obs-fold, a bare CR, a transfer coding after chunked, a malformed chunk) is
 * refused with 400 and the connection closed: the request pipelined after it is never answered
 * and never reaches the upstream. Every attempt carries a valid token and a valid initialize
 * body, so a request the parser let through would be forwarded, and the upstream's log would
 * show it.
 *
 * Each case notes whether Node's lenient parser (`insecureHTTPParser`) would let it through; the
 * control test proves those bytes do get through a lenient server, so these tests fail if the
 * gateway's parser ever stops being strict.
 */

const BODY = JSON.stringify(initializeRequest(1));
const chunked = (text: string) => `${text.length.toString(16)}\r\n${text}\r\n0\r\n\r\n`;

interface SmugglingCase {
  readonly name: string;
  /** Header lines after the common ones (Host, Authorization, Content-Type, Accept), and the body. */
  readonly headers: readonly string[];
  readonly body: string;
  /** Whether a Node server with insecureHTTPParser answers it (and the pipelined request). */
  readonly lenientAccepts: boolean;
}

const CASES: readonly SmugglingCase[] = [
  { name: 'Content-Length and Transfer-Encoding', headers: [`Content-Length: ${chunked(BODY).length}`, 'Transfer-Encoding: chunked'], body: chunked(BODY), lenientAccepts: true },
  { name: 'Transfer-Encoding and Content-Length', headers: ['Transfer-Encoding: chunked', `Content-Length: ${chunked(BODY).length}`], body: chunked(BODY), lenientAccepts: true },
  { name: 'Content-Length: 0 with a chunked body', headers: ['Content-Length: 0', 'Transfer-Encoding: chunked'], body: chunked(BODY), lenientAccepts: true },
  { name: 'two Content-Length headers with different values', headers: [`Content-Length: ${BODY.length}`, `Content-Length: ${BODY.length + 20}`], body: BODY, lenientAccepts: false },
  { name: 'two Content-Length headers with the same value', headers: [`Content-Length: ${BODY.length}`, `Content-Length: ${BODY.length}`], body: BODY, lenientAccepts: false },
  { name: 'a Content-Length list', headers: [`Content-Length: ${BODY.length}, ${BODY.length}`], body: BODY, lenientAccepts: false },
  { name: 'a signed Content-Length', headers: [`Content-Length: +${BODY.length}`], body: BODY, lenientAccepts: false },
  { name: 'a space before the colon', headers: [`Content-Length : ${BODY.length}`, 'Transfer-Encoding: chunked'], body: chunked(BODY), lenientAccepts: false },
  { name: 'obs-fold (a header line starting with a space)', headers: ['X-Folded: a', ' b', `Content-Length: ${BODY.length}`], body: BODY, lenientAccepts: true },
  { name: 'obs-fold (a header line starting with a tab)', headers: ['X-Folded: a', '\tb', `Content-Length: ${BODY.length}`], body: BODY, lenientAccepts: true },
  { name: 'a folded Transfer-Encoding', headers: ['Transfer-Encoding:', ' chunked'], body: chunked(BODY), lenientAccepts: true },
  { name: 'a bare CR inside a header value', headers: ['X-Bad: a\rb', `Content-Length: ${BODY.length}`], body: BODY, lenientAccepts: false },
  { name: 'a bare CR ending a header line', headers: [`X-Bad: a\rContent-Length: ${BODY.length}`], body: BODY, lenientAccepts: false },
  { name: 'a bare LF ending a header line', headers: [`X-Bad: a\nContent-Length: ${BODY.length}`], body: BODY, lenientAccepts: true },
  { name: 'a NUL in a header value', headers: ['X-Bad: a\0b', `Content-Length: ${BODY.length}`], body: BODY, lenientAccepts: true },
  { name: 'Transfer-Encoding: chunked, identity', headers: ['Transfer-Encoding: chunked, identity'], body: chunked(BODY), lenientAccepts: false },
  { name: 'Transfer-Encoding twice', headers: ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], body: chunked(BODY), lenientAccepts: true },
  { name: 'an unknown transfer coding', headers: ['Transfer-Encoding: xchunked'], body: chunked(BODY), lenientAccepts: false },
  { name: 'a non-hex chunk size', headers: ['Transfer-Encoding: chunked'], body: `zz\r\n${BODY}\r\n0\r\n\r\n`, lenientAccepts: false },
  { name: 'a 0x-prefixed chunk size', headers: ['Transfer-Encoding: chunked'], body: `0x${BODY.length.toString(16)}\r\n${BODY}\r\n0\r\n\r\n`, lenientAccepts: false },
  { name: 'an overflowing chunk size', headers: ['Transfer-Encoding: chunked'], body: `fffffffffffffffff\r\n${BODY}\r\n0\r\n\r\n`, lenientAccepts: false },
  { name: 'a chunk size ended by a bare LF', headers: ['Transfer-Encoding: chunked'], body: `${BODY.length.toString(16)}\n${BODY}\r\n0\r\n\r\n`, lenientAccepts: true },
  { name: 'chunk data not followed by CRLF', headers: ['Transfer-Encoding: chunked'], body: `${BODY.length.toString(16)}\r\n${BODY}XX0\r\n\r\n`, lenientAccepts: false },
];

/** The attempt, then a well-formed authorised initialize pipelined behind it on the same connection. */
function attempt(host: string, token: string, testCase: SmugglingCase): string {
  const common = [`Host: ${host}`, `Authorization: Bearer ${token}`, 'Content-Type: application/json', 'Accept: application/json, text/event-stream'];
  const second = JSON.stringify(initializeRequest(2));
  return (
    `POST /mcp HTTP/1.1\r\n${[...common, ...testCase.headers].map((line) => `${line}\r\n`).join('')}\r\n${testCase.body}` +
    `POST /mcp HTTP/1.1\r\n${[...common, `Content-Length: ${second.length}`].map((line) => `${line}\r\n`).join('')}\r\n${second}`
  );
}

function expectRefusedAndClosed(connection: RawConnection): void {
  expect(connection.closed, 'the connection must be closed').toBe(true);
  // 400, or nothing at all; never an answer to either request.
  expect(connection.statuses.every((status) => status === 400), `got: ${JSON.stringify(connection.text.slice(0, 200))}`).toBe(true);
  expect(connection.statuses.length).toBeLessThanOrEqual(1);
}

describe('request smuggling over a raw socket', () => {
  let backends: Backends;
  let gw: TestGateway;
  let host: string;
  let token: string;

  beforeAll(async () => {
    backends = await startBackends();
    gw = await startTestGateway(backends);
    host = new URL(gw.url).host;
    token = await gw.token();
  });
  afterAll(async () => {
    await gw?.close();
    await backends?.close();
  });
  beforeEach(() => backends.upstream.clearLog());
  afterEach(() => destroyRawConnections());

  it('serves the same two requests when they are framed correctly (the baseline)', async () => {
    const valid: SmugglingCase = { name: 'valid', headers: [`Content-Length: ${BODY.length}`], body: BODY, lenientAccepts: true };
    const connection = await sendRaw(gw.port, attempt(host, token, valid), 2_000, { untilResponses: 2 });
    expect(connection.responses.map((response) => response.status)).toEqual([200, 200]);
    expect(backends.upstream.requests).toHaveLength(2);
  });

  it('serves a correctly chunked request too (the baseline for the chunk cases)', async () => {
    const valid: SmugglingCase = { name: 'valid chunked', headers: ['Transfer-Encoding: chunked'], body: chunked(BODY), lenientAccepts: true };
    const connection = await sendRaw(gw.port, attempt(host, token, valid), 2_000, { untilResponses: 2 });
    expect(connection.responses.map((response) => response.status)).toEqual([200, 200]);
    expect(backends.upstream.requests).toHaveLength(2);
  });

  it.each(CASES)('refuses $name with 400, closes the connection, and forwards nothing', async (testCase) => {
    const connection = await sendRaw(gw.port, attempt(host, token, testCase), 2_000);
    expectRefusedAndClosed(connection);
    expect(backends.upstream.requests).toHaveLength(0);
  });

  it('refuses a request without Host with 400 and closes the connection', async () => {
    const connection = await sendRaw(gw.port, `GET /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 2_000);
    expectRefusedAndClosed(connection);
  });

  it('closes a CONNECT tunnel request without answering it or anything pipelined after it', async () => {
    const connection = await sendRaw(gw.port, `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 2_000);
    expectRefusedAndClosed(connection);
    expect(backends.upstream.requests).toHaveLength(0);
  });

  it('treats an Upgrade (h2c, websocket) request as an ordinary one: challenged without a token, never upgraded upstream', async () => {
    const upgrade = (bearer: string | undefined, protocol: string) =>
      `POST /mcp HTTP/1.1\r\nHost: ${host}\r\n${bearer ? `Authorization: Bearer ${bearer}\r\n` : ''}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: ${protocol}\r\n` +
      `HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`;
    for (const [index, protocol] of ['h2c', 'websocket'].entries()) {
      const refused = await sendRaw(gw.port, upgrade(undefined, protocol), 2_000, { untilResponses: 1 });
      expect(refused.responses.map((response) => response.status)).toEqual([401]);
      expect(backends.upstream.requests).toHaveLength(index);
      const served = await sendRaw(gw.port, upgrade(token, protocol), 2_000, { untilResponses: 1 });
      expect(served.responses.map((response) => response.status)).toEqual([200]);
      expect(served.text).not.toMatch(/^HTTP\/1\.1 101/);
    }
    expect(backends.upstream.requests).toHaveLength(2);
    for (const forwarded of backends.upstream.requests) {
      expect(forwarded.headers.upgrade).toBeUndefined();
      expect(forwarded.headers['http2-settings']).toBeUndefined();
      expect(String(forwarded.headers.connection ?? '')).not.toMatch(/upgrade/i);
    }
  });

  it('keeps serving other clients after every attempt', async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });
});

describe('control: the same bytes through a lenient parser', () => {
  let lenient: Server;
  let port: number;

  beforeAll(async () => {
    // What the gateway must never be: a Node server with insecureHTTPParser.
    lenient = createServer({ insecureHTTPParser: true }, (req, res) => {
      req.resume();
      req.on('end', () => res.end('served'));
    });
    await new Promise<void>((resolve) => lenient.listen(0, '127.0.0.1', resolve));
    port = (lenient.address() as AddressInfo).port;
  });
  afterAll(async () => {
    lenient.closeAllConnections();
    await new Promise((resolve) => lenient.close(resolve));
  });
  afterEach(() => destroyRawConnections());

  it.each(CASES.filter((testCase) => testCase.lenientAccepts))('a lenient parser answers both requests of "$name"', async (testCase) => {
    const connection = await sendRaw(port, attempt(`127.0.0.1:${port}`, 'x', testCase), 2_000, { untilResponses: 2 });
    expect(connection.statuses).toEqual([200, 200]);
  });
});

describe('the strict parser stays on', () => {
  it('no source file turns on insecureHTTPParser (only an explicit false, or prose in comments)', async () => {
    const files = (await readdir('src', { recursive: true })).filter((file) => file.endsWith('.ts')).map((file) => join('src', file));
    expect(files.length).toBeGreaterThan(10);
    const offending: string[] = [];
    for (const file of files) {
      const lines = (await readFile(file, 'utf8')).split('\n');
      lines.forEach((line, index) => {
        if (!/insecureHTTPParser|insecure-http-parser/i.test(line)) return;
        const isComment = /^\s*(\*|\/\/|\/\*)/.test(line);
        const isExplicitFalse = /\binsecureHTTPParser\s*:\s*false\b/.test(line);
        if (!isComment && !isExplicitFalse) offending.push(`${file}:${index + 1}: ${line.trim()}`);
      });
    }
    expect(offending).toEqual([]);
    // And the listener states it explicitly, which beats a process-wide --insecure-http-parser.
    expect(await readFile(join('src', 'http', 'listener.ts'), 'utf8')).toMatch(/insecureHTTPParser:\s*false/);
  });

  describe('even when the process runs with --insecure-http-parser', () => {
    let backends: Backends;
    let dir: string;
    let child: ChildProcess | undefined;
    let gatewayUrl: string;
    let probePort: number;

    beforeAll(async () => {
      expect(existsSync(BIN), 'dist/src/bin.js is missing: run `npm run build` (npm test does)').toBe(true);
      backends = await startBackends();
      dir = await mkdtemp(join(tmpdir(), 'mcp-gw-parser-'));
      // Inside the gateway process, a server with default options shows the flag is in force.
      const preload = join(dir, 'probe.mjs');
      await writeFile(
        preload,
        [
          "import { createServer } from 'node:http';",
          "const probe = createServer((req, res) => { req.resume(); req.on('end', () => res.end('served')); });",
          "probe.listen(0, '127.0.0.1', () => process.stderr.write(`probe-port=${probe.address().port}\\n`));",
          'probe.unref();',
        ].join('\n'),
      );
      await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
      const config = join(dir, 'gateway.yaml');
      await writeFile(
        config,
        [
          'listen: { host: 127.0.0.1, port: 0 }',
          'issuers:',
          `  - issuer: ${backends.idp.issuer}`,
          'routes:',
          `  - { name: todo, path: /mcp, upstream: "${backends.upstream.url}", policy: todo.yaml }`,
        ].join('\n'),
      );
      const spawned = spawn(process.execPath, [BIN, '--config', config], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NODE_OPTIONS: `--insecure-http-parser --import ${pathToFileURL(preload).href}` },
      });
      child = spawned;
      // Never outlive the test run, even if afterAll does not get to run.
      const killOnExit = () => spawned.kill('SIGKILL');
      process.once('exit', killOnExit);
      spawned.once('exit', () => process.off('exit', killOnExit));
      let stderr = '';
      const probe = new Promise<number>((resolve) => {
        spawned.stderr!.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          const match = /probe-port=(\d+)/.exec(stderr);
          if (match) resolve(Number(match[1]));
        });
      });
      gatewayUrl = await new Promise<string>((resolve, reject) => {
        createInterface({ input: spawned.stdout! }).on('line', (line) => {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'gateway listening') resolve(entry.url!);
        });
        spawned.once('exit', (code) => reject(new Error(`gateway exited early with ${code}: ${stderr}`)));
      });
      probePort = await probe;
    });
    afterAll(async () => {
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child!.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      destroyRawConnections();
      await backends?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const lenientCases = CASES.filter((testCase) => testCase.lenientAccepts);

    it('the flag is in force in that process (a server with default options is lenient)', async () => {
      const connection = await sendRaw(probePort, attempt(`127.0.0.1:${probePort}`, 'x', lenientCases[0]!), 2_000, { untilResponses: 2 });
      expect(connection.statuses).toEqual([200, 200]);
    });

    it('the gateway still refuses every attempt a lenient parser would let through', async () => {
      const host = new URL(gatewayUrl).host;
      for (const testCase of lenientCases) {
        const connection = await sendRaw(gatewayUrl, attempt(host, 'not-a-token', testCase), 2_000);
        expectRefusedAndClosed(connection);
      }
      expect(backends.upstream.requests).toHaveLength(0);
      expect((await fetch(`${gatewayUrl}/healthz`)).status).toBe(200);
    });
  });
});
