/**
 * For the benchmark's own child processes: stop on SIGTERM/SIGINT, and also when the parent
 * goes away without a word (its end of our stdin pipe closes), so no orphan keeps a port.
 */
export function exitWithParent(close: () => Promise<void>): void {
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    const force = setTimeout(() => process.exit(1), 3_000);
    void close().finally(() => {
      clearTimeout(force);
      process.exit(0);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.once('end', stop);
  process.stdin.once('error', stop);
  process.stdin.resume();
}
