import { pino } from 'pino';

/** The most characters held before they are written, whatever the time: bounds what a burst holds. */
const MAX_BATCH_CHARS = 64 * 1024;
/** How long a line may wait for others to share its write. */
export const FLUSH_INTERVAL_MS = 10;

/** Where a batch goes: pino's synchronous destination (sonic-boom), or a recorder in tests. */
export interface LogSink {
  write(data: string): boolean;
}

/**
 * Where the log lines go: stdout (fd 1) in batches. Written line by line (pino's default), a
 * line cost one write(2), two per request at `info` (access and audit), and those syscalls (a
 * pipe's reader woken each time) were a large part of what logging cost the hot path. Lines now
 * wait up to 10 ms for others, or until 64 Ki characters are waiting, and go out in one write:
 * at 10,000 requests a second, one write for about a hundred requests.
 *
 * The writes themselves stay synchronous (sonic-boom: partial writes, EAGAIN and EPIPE handled),
 * so nothing is ever in flight in the thread pool: `flush()` leaves no line behind, which is what
 * lets exit, a SIGTERM drain and a fatal error lose nothing. Only a process killed outright
 * (SIGKILL, the OOM killer) loses what it held: at most the last 10 ms.
 */
export class BatchedLogOutput {
  private pending = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly flushNow = (): void => this.flush();

  constructor(private readonly sink: LogSink) {}

  /** Batched writes to stdout (or another file descriptor). */
  static toFileDescriptor(fd: number): BatchedLogOutput {
    return new BatchedLogOutput(pino.destination({ dest: fd, sync: true }));
  }

  /** pino calls this with each serialized line. */
  write(line: string): boolean {
    this.pending += line;
    if (this.pending.length >= MAX_BATCH_CHARS) this.flush();
    // unref: waiting lines never keep the process alive; the 'exit' hook writes them.
    else this.timer ??= setTimeout(this.flushNow, FLUSH_INTERVAL_MS).unref();
    return true;
  }

  /** Writes every line still held, synchronously. Also what pino's `logger.flush()` calls. */
  flush(done?: (error?: Error) => void): void {
    clearTimeout(this.timer);
    this.timer = undefined;
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
