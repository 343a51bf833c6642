import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { BIN } from '../support/gateway-process.js';
import { openNamedPipe } from '../support/named-pipe.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { startProcessBed, writeSingleRouteConfig, type ProcessBed } from '../support/process-bed.js';

/** What a Linux pipe holds before a writer must wait (the default pipe size). */
const PIPE_CAPACITY = 64 * 1024;

/**
 * The built binary with its stdout on a named pipe, as a container's stdout is, and a log reader
 * (a log shipper, the container runtime) that stops reading for a while: requests go on being
 * answered at once, and once the reader reads again it gets every access line, in order.
 */
describe('a log reader that stops reading', () => {
  let bed: ProcessBed;
  let gateway: ChildProcess | undefined;
  let reader: Socket | undefined;

  beforeAll(async () => {
    bed = await startProcessBed('log-stall', 'json');
    await writeSingleRouteConfig(bed);
  }, 30_000);
  afterAll(async () => {
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((done) => gateway!.once('exit', done));
      gateway.kill('SIGKILL');
      await exited;
    }
    reader?.destroy();
    await bed?.close();
  });

  it('does not hold up requests, and loses no line', async () => {
    const fifo = join(bed.dir, 'stdout');
    const { readEnd, writeEnd } = openNamedPipe(fifo);
    gateway = spawn(process.execPath, [BIN, '--config', join(bed.dir, 'gateway.yaml')], { stdio: ['ignore', writeEnd, 'inherit'] });
    closeSync(writeEnd);
    reader = new Socket({ fd: readEnd, readable: true, writable: false });
    let output = '';
    reader.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    // Whole lines only: the last one may still be arriving.
    const lines = () =>
      output
        .slice(0, output.lastIndexOf('\n') + 1)
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    const until = async (what: string, done: () => boolean, timeoutMs = 10_000) => {
      for (const deadline = Date.now() + timeoutMs; !done(); await new Promise((resolve) => setTimeout(resolve, 10))) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      }
    };
    await until('the gateway to listen', () => lines().some((line) => line.msg === 'gateway listening'));
    const url = lines().find((line) => line.msg === 'gateway listening')!.url as string;
    const mcpUrl = `${url}/mcp`;
    const token = (await obtainAccessToken(bed.idp, { resource: mcpUrl, scope: 'todo:read' })).accessToken;
    const sessionId = await openSession(mcpUrl, token);

    // The reader stops. Calls go on, four at a time, each timed.
    reader.pause();
    const readBeforeStall = output.length;
    const answered: string[] = [];
    let slowestMs = 0;
    await Promise.all(
      Array.from({ length: 4 }, async (_, worker) => {
        for (let n = 0; n < 150; n++) {
          const started = performance.now();
          const response = await mcpRequest(mcpUrl, toolCall(worker * 1000 + n, 'list_todos'), { token, sessionId, signal: AbortSignal.timeout(5_000) });
          await response.text();
          slowestMs = Math.max(slowestMs, performance.now() - started);
          expect(response.status).toBe(200);
          answered.push(response.headers.get('x-request-id')!);
        }
      }),
    );
    expect(answered).toHaveLength(600);
    // A gateway that waited for the reader would have stopped answering once the pipe was full.
    expect(slowestMs).toBeLessThan(2_000);

    // The reader reads again: every answered call's access line arrives, more than the pipe
    // could have held while it was stopped (so the gateway held the rest, and answered meanwhile).
    reader.resume();
    const accessLineOf = new Set<string>();
    await until('every access line', () => {
      for (const line of lines()) if (line.event === 'access' && typeof line.requestId === 'string') accessLineOf.add(line.requestId);
      return answered.every((id) => accessLineOf.has(id));
    });
    expect(output.length - readBeforeStall).toBeGreaterThan(PIPE_CAPACITY * 2);
    // Every line whole (each parsed above) and none repeated.
    const ids = lines().filter((line) => line.event === 'access').map((line) => line.requestId);
    expect(new Set(ids).size).toBe(ids.length);
  }, 60_000);
});
