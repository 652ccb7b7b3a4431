// Test runner configuration: real sockets, real models, so generous timeouts and no parallel file storms on 2 cores.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    reporters: ['default'],
    allowOnly: false,
  },
});
