import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/**
 * Servers under test run as their own Node processes, so the load generator (this process)
 * never shares an event loop with what it measures.
 */
export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** Recent output lines (stdout and stderr), for error messages and the warning count. */
  readonly output: string[];
  /** Calls `listener` with every later output line; returns how to stop listening. */
  onLine(listener: (line: string, stream: 'stdout' | 'stderr') => void): () => void;
  /** SIGTERM, then SIGKILL if it has not exited within 15 s (a --cpu-prof profile is written at exit). */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
// Last resort when the benchmark exits without cleaning up (an uncaught error): no orphans.
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

const KEPT_LINES = 200;

const LOG_READER = fileURLToPath(new URL('./log-reader-process.js', import.meta.url));

/**
 * Starts `node <nodeFlags> <script> <args>`, or `<wrapper> node …` (valgrind: bench/instructions.ts).
 * stdin stays an open pipe: our own children exit when it closes.
 */
export function spawnNode(name: string, script: string, args: readonly string[], nodeFlags: readonly string[] = [], wrapper: readonly string[] = []): Child {
  const [command, ...commandArgs] = [...wrapper, process.execPath, ...nodeFlags, script, ...args];
  return spawnCommand(name, command!, commandArgs);
}

/**
 * Starts a gateway as spawnNode does, its stdout a pipe read by a process of its own
 * (log-reader-process.ts), as a container runtime reads it: a gateway at log level info writes
 * two lines a request, and reading them must not cost the load generator (this process) its
 * CPU. The reader passes on only warn-and-above lines, which are this Child's output.
 */
export function spawnNodeLoggingToReader(name: string, script: string, args: readonly string[], nodeFlags: readonly string[] = [], wrapper: readonly string[] = []): Child {
  // A named pipe, as a container runtime gives its containers (node's own 'pipe' is a socket
  // pair, which logs differently: the gateway writes to a pipe without waiting, to a socket
  // it waits). The reader's end opens first, non-blocking, so neither open waits for the other.
  const dir = mkdtempSync(join(tmpdir(), 'bench-log-'));
  const fifo = join(dir, 'stdout');
  execFileSync('mkfifo', [fifo]);
  const readEnd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeEnd = openSync(fifo, constants.O_WRONLY);
  const reader = spawn(process.execPath, [LOG_READER], { stdio: [readEnd, 'pipe', 'inherit'] });
  live.add(reader);
  reader.once('exit', () => live.delete(reader));
  const [command, ...commandArgs] = [...wrapper, process.execPath, ...nodeFlags, script, ...args];
  const child = spawnCommand(name, command!, commandArgs, { stdout: writeEnd, readStdout: reader.stdout! });
  // The two processes hold the pipe's ends now: the reader sees its end when the gateway exits.
  closeSync(readEnd);
  closeSync(writeEnd);
  rmSync(dir, { recursive: true, force: true });
  return child;
}

interface StdoutRedirect {
  /** Where the child's stdout goes instead of a pipe this process reads (a stream or a descriptor). */
  readonly stdout: Writable | number;
  /** What this process reads as the child's stdout lines instead. */
  readonly readStdout: Readable;
}

/** Starts any program (nginx) the same way: output kept, stopped with SIGTERM then SIGKILL. */
export function spawnCommand(name: string, command: string, args: readonly string[], redirect?: StdoutRedirect): Child {
  const child = spawn(command, [...args], { stdio: ['pipe', redirect?.stdout ?? 'pipe', 'pipe'] });
  live.add(child);
  const exited = new Promise<void>((done) => child.once('exit', () => (live.delete(child), done())));
  const output: string[] = [];
  child.once('error', (error) => output.push(`${name}: ${error.message}`));
  const listeners = new Set<(line: string, stream: 'stdout' | 'stderr') => void>();
  // One reader per stream, always draining: a second readline on the same pipe would pause it
  // when closed, and a child blocked on a full stdout pipe would skew the measurement.
  const stdout = redirect?.readStdout ?? child.stdout!;
  for (const stream of [stdout, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      output.push(line);
      if (output.length > KEPT_LINES) output.shift();
      for (const listener of listeners) listener(line, stream === stdout ? 'stdout' : 'stderr');
    });
  }
  return {
    name,
    process: child,
    output,
    onLine(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves with the first stdout line that parses as a JSON object (how our children report their URL). */
export function firstJsonLine(child: Child, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const settle = (outcome: () => void) => {
      clearTimeout(timer);
      stopListening();
      child.process.off('exit', onExit);
      outcome();
    };
    const fail = (why: string) => settle(() => reject(new Error(`${child.name} ${why}:\n${child.output.join('\n')}`)));
    const onExit = (code: number | null) => fail(`exited early with ${code}`);
    const timer = setTimeout(() => fail(`printed no JSON line within ${timeoutMs} ms`), timeoutMs);
    child.process.once('exit', onExit);
    const stopListening: () => void = child.onLine((line, stream) => {
      if (stream !== 'stdout') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        return; // some other output: keep waiting
      }
      if (typeof value === 'object' && value !== null) settle(() => resolve(value as Record<string, unknown>));
    });
  });
}
