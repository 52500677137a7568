import { defineConfig } from 'vitest/config';

// The fast loop (`make test-unit`): the pure tests of test/unit, without PostgreSQL or bundles (no
// global set-up). `make test` runs them again with everything else.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
  },
});
