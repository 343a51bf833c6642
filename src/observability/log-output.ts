import { closeSync, constants, fstatSync, openSync, writeSync, writevSync } from 'node:fs';

/** The most characters held before they are written, whatever the time: bounds what a burst holds. */
const MAX_BATCH_CHARS = 64 * 1024;
/** How long a line may wait for others to share its write (and a reader that is behind, between tries). */
export const FLUSH_INTERVAL_MS = 10;
/**
 * The most bytes held for a reader that is behind. Past it the gateway waits for the reader
 * rather than drop a line or grow without bound.
 */
export const MAX_BACKLOG_BYTES = 16 * 1024 * 1024;
/** Buffers handed to one writev(2): well under IOV_MAX (1024 on Linux). */
const MAX_CHUNKS_PER_WRITE = 256;

/** Where batches go: a file descriptor (FileDescriptorSink), or a recorder in tests. */
export interface LogSink {
  /** Writes all of `data`, waiting for the reader as long as it takes. */
  write(data: string | Buffer): unknown;
  /**
   * Writes what fits now, in order, without waiting, and returns how many bytes that was (0 when
   * the reader is behind). Absent when the destination cannot be written without waiting.
   */
  writeSome?(chunks: readonly Buffer[]): number;
}

/**
 * Where the log lines go: stdout (fd 1) in batches. Written line by line (pino's default), a
 * line cost one write(2), two per request at `info` (access and audit), and those syscalls (a
 * pipe's reader woken each time) were a large part of what logging cost the hot path. Lines now
 * wait up to 10 ms for others, or until 64 Ki characters are waiting, and go out in one write:
 * at 10,000 requests a second, one write for about a hundred requests.
 *
 * A write never makes requests wait for the log reader. When stdout is a pipe (as a container's
 * is), batches go through a non-blocking descriptor of their own: what the pipe cannot take now
 * is held, in order, and tried again every 10 ms. A blocking write stalled every request for as
 * long as the reader was behind (up to 17 ms in `npm run bench`, and for ever with a reader that
 * stopped). Only past MAX_BACKLOG_BYTES held does the gateway wait for the reader.
 *
 * Nothing is ever in flight outside this object (no thread pool, no queued stream write), so
 * `flush()` writes everything, waiting for the reader: that is what lets exit, a SIGTERM drain
 * and a fatal error lose nothing. Only a process killed outright (SIGKILL, the OOM killer) loses
 * what it held: the last 10 ms, or what a stalled reader had not taken.
 */
export class BatchedLogOutput {
  private pending = '';
  /** Bytes the reader has not taken yet, oldest first: they go before anything pending. */
  private backlog: Buffer[] = [];
  private backlogBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly writeLater = (): void => {
    this.timer = undefined;
    this.writeHeld();
  };

  constructor(private readonly sink: LogSink) {}

  /** Batched writes to a file descriptor (stdout: 1). */
  static toFileDescriptor(fd: number): BatchedLogOutput {
    return new BatchedLogOutput(new FileDescriptorSink(fd));
  }

  /** pino calls this with each serialized line. */
  write(line: string): boolean {
    this.pending += line;
    if (this.pending.length >= MAX_BATCH_CHARS) this.writeHeld();
    // unref: waiting lines never keep the process alive; the 'exit' hook writes them.
    else this.timer ??= setTimeout(this.writeLater, FLUSH_INTERVAL_MS).unref();
    return true;
  }

  /** Writes every line still held, waiting for the reader if it must. Also what pino's `logger.flush()` calls. */
  flush(done?: (error?: Error) => void): void {
    this.stopTimer();
    for (const chunk of this.backlog.splice(0)) this.sink.write(chunk);
    this.backlogBytes = 0;
    const batch = this.pending;
    this.pending = '';
    if (batch.length > 0) this.sink.write(batch);
    done?.();
  }

  /** What the reader will take now; the rest stays held and is tried again shortly. */
  private writeHeld(): void {
    if (!this.sink.writeSome) {
      this.flush();
      return;
    }
    this.stopTimer();
    if (this.pending.length > 0) {
      const fresh = Buffer.from(this.pending);
      this.pending = '';
      this.backlog.push(fresh);
      this.backlogBytes += fresh.length;
    }
    while (this.backlog.length > 0) {
      const written = this.sink.writeSome(this.backlog.slice(0, MAX_CHUNKS_PER_WRITE));
      if (written === 0) break;
      this.taken(written);
    }
    if (this.backlogBytes > MAX_BACKLOG_BYTES) this.flush();
    else if (this.backlog.length > 0) this.timer = setTimeout(this.writeLater, FLUSH_INTERVAL_MS).unref();
  }

  /** Drops the first `bytes` bytes of the backlog: the reader has them. */
  private taken(bytes: number): void {
    this.backlogBytes -= bytes;
    let left = bytes;
    while (left > 0) {
      const first = this.backlog[0]!;
      if (first.length > left) {
        this.backlog[0] = first.subarray(left);
        return;
      }
      left -= first.length;
      this.backlog.shift();
    }
  }

  private stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * A file descriptor, written synchronously. When it is a pipe (FIFO) on Linux, a second,
 * non-blocking descriptor of the same pipe (opened through /proc/self/fd, so fd 1's own flags,
 * shared with whoever else holds it, stay as they are) lets the output write without waiting.
 * A socket, a file or a terminal has none: every batch is written whole, as before.
 */
export class FileDescriptorSink implements LogSink {
  readonly writeSome: ((chunks: readonly Buffer[]) => number) | undefined;
  private closed = false;
  private readonly nonBlocking: number | undefined;

  constructor(private readonly fd: number) {
    const nonBlocking = openNonBlockingPipe(fd);
    this.nonBlocking = nonBlocking;
    this.writeSome = nonBlocking === undefined ? undefined : (chunks) => this.writeWithoutWaiting(nonBlocking, chunks);
  }

  /** Closes the descriptor this sink opened (not `fd`, which is the caller's); later writes are dropped. */
  close(): void {
    this.closed = true;
    if (this.nonBlocking !== undefined) closeSync(this.nonBlocking);
  }

  write(data: string | Buffer): void {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let offset = 0;
    while (offset < bytes.length && !this.closed) {
      try {
        offset += writeSync(this.fd, bytes, offset);
      } catch (error) {
        // Someone set the shared descriptor non-blocking (a library touching process.stdout):
        // wait a millisecond for the reader, not the 100 ms a sleeping retry would.
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') Atomics.wait(PAUSE, 0, 0, 1);
        else this.lost(error);
      }
    }
  }

  private writeWithoutWaiting(fd: number, chunks: readonly Buffer[]): number {
    if (this.closed) return totalLength(chunks);
    try {
      return writevSync(fd, chunks);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
      this.lost(error);
      return totalLength(chunks);
    }
  }

  /**
   * The reader is gone (EPIPE) or the descriptor unusable: no line can be written any more. Said
   * once on stderr; the gateway goes on serving rather than crash on its log output.
   */
  private lost(error: unknown): void {
    this.closed = true;
    try {
      writeSync(2, `${JSON.stringify({ level: 50, msg: 'log output failed: log lines are dropped from now on', err: String(error) })}\n`);
    } catch {
      // stderr is gone too: nothing left to tell.
    }
  }
}

const PAUSE = new Int32Array(new SharedArrayBuffer(4));

function totalLength(chunks: readonly Buffer[]): number {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  return length;
}

/** A non-blocking descriptor of the pipe `fd` is, or undefined when it is not a pipe (or not Linux). */
function openNonBlockingPipe(fd: number): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    if (!fstatSync(fd).isFIFO()) return undefined;
    return openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

let stdoutOutput: BatchedLogOutput | undefined;

/** The one batched stdout every default logger shares, flushed at process exit. */
export function standardOutput(): BatchedLogOutput {
  if (!stdoutOutput) {
    stdoutOutput = BatchedLogOutput.toFileDescriptor(1);
    const output = stdoutOutput;
    // 'exit' runs after process.exit() (the end of a SIGTERM drain) and after an uncaught
    // exception alike; only synchronous work happens there, which flush() is.
    process.on('exit', () => output.flush());
  }
  return stdoutOutput;
}
