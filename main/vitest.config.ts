import { defineConfig } from 'vitest/config';

/** Console backend and Electron-shell helpers: plain Node tests. */
export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['src/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
  },
});
