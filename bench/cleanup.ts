/**
 * Everything the benchmark starts registers how to undo it here, so a normal end, an error and
 * Ctrl-C all leave no process, temp dir or Redis key behind.
 */
export class Cleanup {
  private readonly steps: { label: string; undo: () => Promise<void> | void }[] = [];
  private running: Promise<void> | undefined;

  /** Undone in reverse order of registration (gateways before the upstream they talk to). */
  defer(label: string, undo: () => Promise<void> | void): void {
    this.steps.push({ label, undo });
  }

  /** Runs every step once, even when some fail; calling it again waits for the first call. */
  run(): Promise<void> {
    this.running ??= (async () => {
      for (const { label, undo } of this.steps.reverse()) {
        try {
          await undo();
        } catch (error) {
          process.stderr.write(`bench: cleanup of ${label} failed: ${(error as Error).message}\n`);
        }
      }
    })();
    return this.running;
  }

  /** Ctrl-C or SIGTERM: clean up, then exit with the conventional 128 + signal status. */
  exitOnSignals(): void {
    const onSignal = (signal: NodeJS.Signals, status: number) => {
      process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
      void this.run().finally(() => process.exit(status));
    };
    process.once('SIGINT', () => onSignal('SIGINT', 130));
    process.once('SIGTERM', () => onSignal('SIGTERM', 143));
  }
}
