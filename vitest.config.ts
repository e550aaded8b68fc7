import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real processes on loopback ports; keep files
    // from fighting over the two cores.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
