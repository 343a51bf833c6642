import { readFile } from 'node:fs/promises';

/**
 * CPU time per process role, read before and after each run. On a small machine every process
 * competes for the same cores, so requests/second partly measures who got the CPU; CPU time per
 * request is the cost that carries over to a machine where the gateway has cores of its own.
 */
export type Role = 'gateway' | 'proxy' | 'upstream' | 'redis' | 'load generator';

export interface CpuSource {
  readonly role: Role;
  /** Cumulative CPU seconds; NaN where it cannot be read (no /proc, e.g. macOS). */
  read(): Promise<number>;
}

/** Linux clock ticks per second for /proc/<pid>/stat (USER_HZ: 100 on every mainstream kernel build). */
const USER_HZ = 100;

/** user + system time of another process, all its threads (GC and libuv workers included). */
export function processCpu(role: Role, pid: number): CpuSource {
  return {
    role,
    async read() {
      try {
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
        // The command name may hold spaces or parentheses: fields are counted after the last ')'.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
      } catch {
        return Number.NaN;
      }
    },
  };
}

/** This process: the load generator. */
export function ownCpu(): CpuSource {
  return {
    role: 'load generator',
    async read() {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1e6;
    },
  };
}

/** Snapshot now; the returned function gives CPU seconds used since, summed by role. */
export async function startCpuWindow(sources: readonly CpuSource[]): Promise<() => Promise<Partial<Record<Role, number>>>> {
  const before = await Promise.all(sources.map((source) => source.read()));
  return async () => {
    const after = await Promise.all(sources.map((source) => source.read()));
    const used: Partial<Record<Role, number>> = {};
    sources.forEach((source, i) => {
      used[source.role] = (used[source.role] ?? 0) + (after[i]! - before[i]!);
    });
    return used;
  };
}
