import { pino } from 'pino';

/** The most characters held before they are written, whatever the turn: bounds what a burst holds. */
const MAX_BATCH_CHARS = 64 * 1024;

/** Where a batch goes: pino's synchronous destination (sonic-boom), or a recorder in tests. */
export interface LogSink {
  write(data: string): boolean;
}

/**
 * Where the log lines go: stdout (fd 1) in batches. Written line by line (pino's default), a
 * line cost one write(2), two per request at `info` (access and audit), and that syscall was most
 * of what logging cost the hot path. Lines are now gathered during one turn of the event loop and
 * written together at its end (setImmediate), or as soon as 64 Ki characters are waiting: one
 * write for however many requests the turn served, and at low load a line is out as soon as it
 * would have been before.
 *
 * The writes themselves stay synchronous (sonic-boom: partial writes, EAGAIN and EPIPE handled),
 * so nothing is ever in flight in the thread pool: `flush()` leaves no line behind, which is what
 * lets exit, a SIGTERM drain and a fatal error lose nothing.
 */
export class BatchedLogOutput {
  private pending = '';
  private scheduled = false;
  private readonly endOfTurn = (): void => this.flush();

  constructor(private readonly sink: LogSink) {}

  /** Batched writes to stdout (or another file descriptor). */
  static toFileDescriptor(fd: number): BatchedLogOutput {
    return new BatchedLogOutput(pino.destination({ dest: fd, sync: true }));
  }

  /** pino calls this with each serialized line. */
  write(line: string): boolean {
    this.pending += line;
    if (this.pending.length >= MAX_BATCH_CHARS) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.endOfTurn);
    }
    return true;
  }

  /** Writes every line still held, synchronously. Also what pino's `logger.flush()` calls. */
  flush(done?: (error?: Error) => void): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = '';
    if (batch.length > 0) this.sink.write(batch);
    done?.();
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

/** Writes every log line still held on stdout (a no-op when nothing was logged there). */
export function flushStandardOutput(): void {
  stdoutOutput?.flush();
}
