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
    // expect.poll waits for a state up to this deadline (vitest's default is 1 s: too short on a loaded CI machine).
    expect: { poll: { timeout: 10_000 } },
  },
});
