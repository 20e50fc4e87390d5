import { defineConfig } from 'vitest/config';

// Node-side tests: shared code, offline pipeline, metrics, kernels.
// Worker tests run inside workerd through vitest.worker.config.ts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'shared/**/*.test.ts', 'offline/**/*.test.ts'],
    exclude: ['test/worker/**', 'test/browser/**', 'test/http/**', 'node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: more forks than that only thrash.
    maxWorkers: 2,
    pool: 'forks',
  },
});
