import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

/** Renderer components and hooks under happy-dom. */
export default defineConfig({
  plugins: [react()],
  test: {
    root: import.meta.dirname,
    include: ['src/**/*.test.{ts,tsx}'],
    environment: 'happy-dom',
    setupFiles: ['./src/test/setup.ts'],
    css: false,
    testTimeout: 20_000,
  },
});
