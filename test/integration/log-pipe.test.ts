/**
 * The batched log output on real file descriptors: a named pipe (FIFO, what a container's stdout
 * is) whose reader stops reading, and a regular file.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatchedLogOutput, FileDescriptorSink } from '../../src/observability/log-output.js';
import { openNamedPipe } from '../support/named-pipe.js';

const LINES = Array.from({ length: 20_000 }, (_, n) => `{"level":30,"n":${n},"msg":"request","path":"/mcp/é"}\n`);
const ALL = LINES.join('');
const execFileAsync = promisify(execFile);
const BUILT_OUTPUT = pathToFileURL(resolve('dist/src/observability/log-output.js')).href;
/** Writes LINES to its stdout through the standard output, says so on stderr, and stays up. */
const WRITER = `
import { standardOutput } from ${JSON.stringify(BUILT_OUTPUT)};
const output = standardOutput();
for (let n = 0; n < ${String(LINES.length)}; n++) output.write(\`{"level":30,"n":\${n},"msg":"request","path":"/mcp/é"}\\n\`);
process.stderr.write('wrote ${String(LINES.length)} lines');
setInterval(() => {}, 1_000);
`;

describe('batched log output on a pipe', () => {
  let dir: string;
  let readEnd: number;
  let writeEnd: number;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-gw-log-pipe-'));
    const fifo = join(dir, 'stdout');
    ({ readEnd, writeEnd } = openNamedPipe(fifo));
  });
  afterEach(() => {
    closeSync(readEnd);
    closeSync(writeEnd);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Everything in the pipe now, without waiting. */
  const drain = (): Buffer => {
    const parts: Buffer[] = [];
    const buffer = Buffer.alloc(256 * 1024);
    for (;;) {
      try {
        const n = readSync(readEnd, buffer);
        if (n === 0) break;
        parts.push(Buffer.from(buffer.subarray(0, n)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw error;
      }
    }
    return Buffer.concat(parts);
  };

  let sinks: FileDescriptorSink[] = [];
  /** The output a process has on `fd`; its own descriptor is closed after the test. */
  const outputTo = (fd: number) => {
    const sink = new FileDescriptorSink(fd);
    sinks.push(sink);
    return new BatchedLogOutput(sink);
  };
  afterEach(() => {
    for (const sink of sinks) sink.close();
    sinks = [];
  });

  it('never waits for a reader that stopped reading, and hands it every line in order once it reads again', async () => {
    // A process logging to stdout as the gateway does (the built output on fd 1), with this test
    // as the pipe's reader, not reading at first. A write that waited for the reader would never
    // get to say it was done: about 1 MiB is sixteen times what the pipe holds.
    const writer = spawn(process.execPath, ['--input-type=module', '-e', WRITER], { stdio: ['ignore', writeEnd, 'pipe'] });
    try {
      const said = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the writer never finished writing: it is waiting for the reader')), 10_000);
        writer.stderr!.once('data', (chunk: Buffer) => (clearTimeout(timer), resolve(chunk.toString('utf8'))));
      });
      expect(said).toMatch(/^wrote \d+ lines$/);

      let received = drain();
      expect(received.length).toBeGreaterThan(0);
      expect(received.length).toBeLessThan(Buffer.byteLength(ALL));
      // The reader is reading again: the held lines follow, tried every 10 ms.
      const deadline = Date.now() + 10_000;
      while (received.length < Buffer.byteLength(ALL) && Date.now() < deadline) {
        await sleep(5);
        received = Buffer.concat([received, drain()]);
      }
      expect(received.toString('utf8')).toBe(ALL);
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('flush() writes whatever it still holds, after what the reader already has', async () => {
    const output = outputTo(writeEnd);
    for (const line of LINES.slice(0, 5_000)) output.write(line);
    await sleep(30);
    const first = drain();
    for (const line of LINES.slice(5_000, 6_000)) output.write(line);
    // flush() waits for the reader, so the reader must be reading meanwhile: a child process.
    const rest = join(dir, 'rest');
    const reader = execFileAsync('sh', ['-c', `cat "${join(dir, 'stdout')}" > "${rest}"`]);
    await sleep(200);
    output.flush();
    // The reader sees the end once no write end is left open.
    for (const sink of sinks.splice(0)) sink.close();
    closeSync(writeEnd);
    writeEnd = openSync('/dev/null', constants.O_WRONLY);
    await reader;
    expect(Buffer.concat([first, drain(), readFileSync(rest)]).toString('utf8')).toBe(LINES.slice(0, 6_000).join(''));
  });

  it('writes without waiting only to a pipe: a regular file gets every batch whole, appended', () => {
    const file = join(dir, 'log');
    const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND);
    try {
      const fileSink = new FileDescriptorSink(fd);
      sinks.push(fileSink);
      expect(fileSink.writeSome).toBeUndefined();
      // Control: the pipe's sink has one.
      const pipeSink = new FileDescriptorSink(writeEnd);
      sinks.push(pipeSink);
      expect(typeof pipeSink.writeSome).toBe('function');
      const output = new BatchedLogOutput(fileSink);
      for (const line of LINES.slice(0, 100)) output.write(line);
      output.flush();
      for (const line of LINES.slice(100, 200)) output.write(line);
      output.flush();
      expect(readFileSync(file, 'utf8')).toBe(LINES.slice(0, 200).join(''));
    } finally {
      closeSync(fd);
    }
  });
});
