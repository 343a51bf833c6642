import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // End-to-end suites start real servers (IdP, upstreams, gateway): give them room, but a
    // hung socket must still fail the run rather than stall CI.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Most files wait on sockets and child processes rather than compute: vitest's default (one
    // worker fewer than the CPUs) ran them one at a time on two cores, 5 minutes; three halve it.
    maxWorkers: Math.max(3, availableParallelism() - 1),
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
