import { defineConfig } from 'vitest/config';

/** Contract tests: schemas and the layering rule. */
export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
