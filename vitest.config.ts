// Test runner configuration: a fast `unit` project (pure code, files in parallel) and an `integration` project
// (real sockets, models, broker and child processes: generous timeouts, one file at a time on 2 cores).
import { defineConfig } from 'vitest/config';

const unitFiles = 'test/**/*.unit.test.ts';

export default defineConfig({
  test: {
    reporters: ['default'],
    allowOnly: false,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [unitFiles],
          // Fails a unit test that opens a socket or starts a process, so that the split stays honest.
          setupFiles: ['test/helpers/unit-guard.ts'],
          // No I/O beyond temporary files: a test that needs longer than this is not a unit test.
          testTimeout: 10_000,
          hookTimeout: 10_000,
          fileParallelism: true,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [unitFiles],
          // Tests that start `bin/kt.js` run dist/: rebuild it when a source changed (a no-op when it is current).
          globalSetup: ['test/helpers/build-dist.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
