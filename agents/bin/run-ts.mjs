#!/usr/bin/env node
// Runs a TypeScript script of the agent package (benchmarks, tools) through tsx.
import { register } from 'tsx/esm/api';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

register();
const script = process.argv[2];
if (!script) {
  console.error('usage: run-ts.mjs SCRIPT.ts [args…]');
  process.exit(2);
}
process.argv.splice(2, 1);
await import(pathToFileURL(path.resolve(script)).href);
