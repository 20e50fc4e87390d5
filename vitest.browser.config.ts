import { defineConfig } from 'vitest/config';

// The upload page, served by `wrangler dev`, driven in Debian's headless Chromium.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts', 'test/http/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    maxWorkers: 1,
  },
});
