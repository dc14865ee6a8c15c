#!/usr/bin/env node
'use strict';
// Entry point of the agent daemon and its CLI. A CommonJS launcher on
// purpose: libuv sizes its thread pool (which serves the pool's file I/O)
// on first use, and the ESM loader uses it before any module code runs, so
// the size must be set here, first.
process.env.UV_THREADPOOL_SIZE ??= '16';

// What runs is the JavaScript build (dist/, `npm run build:agent`), which
// starts in a fraction of the time the TypeScript sources take through tsx.
// A build is never run stale: dist/build-stamp.json lists the sources it was
// made from (and the lockfile), and when any of them changed after the build
// read them (a clone after an edit or a pull) the sources run through tsx
// instead. An installed package has no src/ beside its build (and its files
// carry the install's time), so there the build is what runs.
// TANDEM_AGENT_FROM=source|build forces one or the other.
const fs = require('node:fs');
const path = require('node:path');

const agentDir = path.join(__dirname, '..');
const bundle = path.join(agentDir, 'dist', 'tandem-agent.mjs');

function buildIsCurrent() {
  if (!fs.existsSync(path.join(agentDir, 'src'))) return true; // an installed package: its build, or the error below
  let stamp;
  try {
    stamp = JSON.parse(fs.readFileSync(path.join(agentDir, 'dist', 'build-stamp.json'), 'utf8'));
  } catch {
    return false;
  }
  for (const source of stamp.sources) {
    let stat;
    try {
      stat = fs.statSync(path.join(agentDir, source));
    } catch {
      continue; // removed (then a source that imported it changed too)
    }
    if (stat.mtimeMs > stamp.sourcesReadFrom) return false;
  }
  return true;
}

function useBuild() {
  const from = process.env.TANDEM_AGENT_FROM;
  if (from === 'source') return false;
  if (from === 'build') return true;
  if (from !== undefined && from !== '') {
    console.error(`error: bad-request: TANDEM_AGENT_FROM must be "source" or "build", not "${from}"`);
    process.exit(2);
  }
  return buildIsCurrent();
}

(async () => {
  if (useBuild()) {
    if (!fs.existsSync(bundle)) {
      console.error(`error: not-found: no build at ${bundle} (run npm run build:agent, or unset TANDEM_AGENT_FROM)`);
      process.exit(1);
    }
    await (await import(bundle)).runCli(process.argv.slice(2));
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await (await import("../src/cli/main.ts")).runCli(process.argv.slice(2));
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
