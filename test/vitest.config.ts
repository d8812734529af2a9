// End-to-end suites start real processes and move gigabytes on a 2-core machine: one file at a
// time, generous timeouts (each wait inside a test has its own tighter bound).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    reporters: ['verbose'],
  },
});
