import { readFile } from 'node:fs/promises';

/** Resident memory of a process now and at its peak, from /proc/<pid>/status (Linux), in bytes. */
export interface ProcessMemory {
  readonly rss: number;
  /** VmHWM: the highest RSS so far. */
  readonly peakRss: number;
}

export async function processMemory(pid: number): Promise<ProcessMemory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kib('VmRSS'), peakRss: kib('VmHWM') };
}

/**
 * This process's soft limit on open files (children inherit it), from /proc/self/limits;
 * undefined when it cannot be read or is unlimited.
 */
export async function openFileLimit(): Promise<number | undefined> {
  try {
    const limits = await readFile('/proc/self/limits', 'utf8');
    const value = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
    return value === undefined ? undefined : Number(value);
  } catch {
    return undefined;
  }
}

export const MIB = 1024 * 1024;
