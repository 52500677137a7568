import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Child processes, not worker threads: tests start servers and PostgreSQL clients, and a
    // crashed fork cannot take the runner down with it.
    pool: 'forks',
    maxWorkers: 2, // the machines (developers' and CI's) have 2 cores
    // Builds the function bundles, starts a private PostgreSQL unless TEST_DATABASE_URL is set,
    // migrates it, and provides `databaseUrl` (see test/setup/global.ts).
    globalSetup: ['test/setup/global.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // In CI also a JSON report, from which .ci/run prints a plain "N passed, N failed" line.
    ...(process.env.CI ? { reporters: ['default', 'json'], outputFile: { json: '.data/vitest-report.json' } } : {}),
  },
});
