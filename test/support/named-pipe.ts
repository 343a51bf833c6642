import { execFileSync } from 'node:child_process';
import { constants, openSync } from 'node:fs';

/**
 * Makes a named pipe (FIFO) at `path`, what a container runtime gives a container as stdout, and
 * opens both ends: the reader's first and non-blocking, so that neither open waits for the other.
 * The caller closes both descriptors.
 */
export function openNamedPipe(path: string): { readEnd: number; writeEnd: number } {
  execFileSync('mkfifo', [path]);
  const readEnd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return { readEnd, writeEnd: openSync(path, constants.O_WRONLY) };
}
