// Builds the agent (daemon and CLI) to JavaScript: esbuild bundles
// src/cli/main.ts with @tandem/contract and the pure-JS npm dependencies
// into dist/ (ESM, code-split so a CLI command loads only what it uses),
// leaving out only the native packages. Writes dist/build-stamp.json, which
// lists every source file the bundle was made from: bin/tandem-agent.cjs
// runs the bundle only while none of them changed since the build read them.
//
//   node agents/scripts/build.mjs     (npm run build:agent)
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';

const agentsDir = path.resolve(import.meta.dirname, '..');
const defaultOutdir = path.join(agentsDir, 'dist');

/** Packages with native code (or optional native helpers) stay npm dependencies. */
export const externalPackages = ['better-sqlite3', '@node-rs/crc32', '@node-rs/xxhash', 'bufferutil', 'utf-8-validate'];

/** `outdir`: where the build goes (agents/dist by default; the package script builds into its staging dir). */
export async function buildAgent({ quiet = false, outdir = defaultOutdir } = {}) {
  const started = performance.now();
  // Sources changed from now on are newer than this build (the launcher's test).
  const sourcesReadFrom = Date.now();
  // Built beside dist/ and swapped in whole: an agent starting meanwhile sees the old build or the new one.
  const staging = `${outdir}.new-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const result = await build({
    absWorkingDir: agentsDir,
    entryPoints: { 'tandem-agent': 'src/cli/main.ts' },
    outdir: staging,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    external: externalPackages,
    // The repo's own contract sources, also where node_modules links elsewhere.
    alias: { '@tandem/contract': path.join(agentsDir, '../contract/src/index.ts') },
    // CommonJS dependencies inside an ESM bundle call require() for Node's builtins.
    banner: { js: "import { createRequire as __tandemCreateRequire } from 'node:module'; const require = __tandemCreateRequire(import.meta.url);" },
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    logLevel: quiet ? 'error' : 'warning',
    legalComments: 'none',
    minify: true,
  });
  // Sources the bundle was made from (ours, not node_modules), relative to agents/.
  const sources = Object.keys(result.metafile.inputs)
    .filter((input) => !input.includes('node_modules/'))
    .map((input) => path.relative(agentsDir, path.resolve(agentsDir, input)))
    .sort();
  // New versions of the bundled npm packages come with a new lockfile.
  sources.push('../package-lock.json');
  const stamp = { builtAt: new Date().toISOString(), sourcesReadFrom, sources };
  await writeFile(path.join(staging, 'build-stamp.json'), `${JSON.stringify(stamp, null, 1)}\n`);
  await rm(outdir, { recursive: true, force: true });
  await rename(staging, outdir);
  if (!quiet) {
    const bytes = Object.entries(result.metafile.outputs).reduce((sum, [, output]) => sum + output.bytes, 0);
    console.log(`build:agent: ${path.relative(process.cwd(), outdir) || '.'} (${sources.length} sources, ${(bytes / 1024).toFixed(0)} KiB) in ${Math.round(performance.now() - started)} ms`);
  }
  return stamp;
}

if (import.meta.filename === process.argv[1]) await buildAgent();
