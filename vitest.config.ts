import { existsSync, readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

/**
 * Tool paths found by scripts/test-setup.sh (run by `npm test`); variables
 * already set in the environment win.
 */
function testToolsEnv(): Record<string, string> {
  const file = '.tmp/test-tools.env';
  if (!existsSync(file)) return {};
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (value && !process.env[key]) env[key] = value;
  }
  return env;
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    env: testToolsEnv(),
    // Process-level tests run dist/: rebuild it first when a source is newer.
    globalSetup: ['test/helpers/global-setup.ts'],
    // Stops processes a test file spawned and left running (test/helpers/stop-leftovers.ts).
    setupFiles: ['test/helpers/stop-leftovers.ts'],
    // Integration tests start real processes on loopback ports; keep files
    // from fighting over the two cores.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
