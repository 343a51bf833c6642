import type { Child } from './children.js';

/**
 * Allocation on the hot path, from V8's own GC trace: a process started with --trace-gc-nvp
 * prints one line per garbage collection, whose `allocated=` field is the bytes allocated on
 * the V8 heap since the previous collection. Summed over the collections during a fixed number
 * of requests, it is what those requests allocated (to within one young-generation fill, against
 * hundreds of collections per window). Buffers' backing stores outside the V8 heap are not in it.
 */
export const GC_TRACE_FLAGS = ['--trace-gc-nvp'] as const;

export interface GcWindow {
  readonly allocatedBytes: number;
  readonly collections: number;
  /** Young-generation collections (scavenges); the rest are full mark-compacts. */
  readonly scavenges: number;
  /** Main-thread pause, summed. */
  readonly pauseMs: number;
}

export interface GcTracer {
  /** Starts a window: collections from now on are counted. */
  start(): void;
  /** Ends the window and returns its sums. */
  stop(): GcWindow;
  /** GC trace lines, so the caller can leave them out of the warning count. */
  isTraceLine(line: string): boolean;
}

const TRACE_LINE = /\bpause=([\d.]+) .*\bgc=(\w+) .*\ballocated=(\d+)/;

export function traceGc(child: Child): GcTracer {
  let window: { allocatedBytes: number; collections: number; scavenges: number; pauseMs: number } | undefined;
  child.onLine((line) => {
    if (!window) return;
    const match = TRACE_LINE.exec(line);
    if (!match) return;
    window.pauseMs += Number(match[1]);
    window.collections++;
    if (match[2] === 's') window.scavenges++;
    window.allocatedBytes += Number(match[3]);
  });
  return {
    start() {
      window = { allocatedBytes: 0, collections: 0, scavenges: 0, pauseMs: 0 };
    },
    stop() {
      const result = window ?? { allocatedBytes: 0, collections: 0, scavenges: 0, pauseMs: 0 };
      window = undefined;
      return result;
    },
    isTraceLine: (line) => TRACE_LINE.test(line),
  };
}
