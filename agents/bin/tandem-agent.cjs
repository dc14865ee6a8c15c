#!/usr/bin/env node
'use strict';
// Entry point of the agent daemon and its CLI. A CommonJS launcher on
// purpose: libuv sizes its thread pool (which serves the pool's file I/O)
// on first use, and the ESM loader uses it before any module code runs, so
// the size must be set here, first. The agent itself is TypeScript run
// through tsx's loader, so the sources are what runs (no stale build).
process.env.UV_THREADPOOL_SIZE ??= '16';

(async () => {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
