import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import react from '@vitejs/plugin-react';

/**
 * Build of the console: Electron main (with the console backend), the preload
 * bridge and the renderer. Top-level folders, so every entry is explicit.
 * Output: out/main, out/preload, out/renderer (the backend serves the latter
 * in browser mode too).
 */
const root = import.meta.dirname;

export default defineConfig({
  main: {
    build: {
      outDir: resolve(root, 'out/main'),
      // The contract is TypeScript source in a workspace package: bundle it.
      externalizeDeps: { exclude: ['@tandem/contract'] },
      rollupOptions: {
        input: { index: resolve(root, 'main/src/index.ts') },
      },
    },
  },
  preload: {
    build: {
      outDir: resolve(root, 'out/preload'),
      // A sandboxed preload cannot require from node_modules: bundle everything.
      externalizeDeps: false,
      rollupOptions: {
        input: { index: resolve(root, 'preload/src/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(root, 'renderer'),
    plugins: [react()],
    build: {
      outDir: resolve(root, 'out/renderer'),
      rollupOptions: {
        input: { index: resolve(root, 'renderer/index.html') },
      },
    },
  },
});
