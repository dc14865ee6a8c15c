#!/usr/bin/env node
// Packs the agent for a host: an npm tarball with the JavaScript build (no
// TypeScript, no tsx), the launcher, the native addon's sources (built by the
// package's install script), the systemd unit and its installer. Only the
// npm packages with native code stay dependencies; everything else, the
// contract included, is in the bundle. See README, "Run the agent as a service".
//
//   node scripts/package-agent.mjs [--out DIR]     (npm run package:agent)
// Prints the tarball's path. Leaves agents/dist alone (it builds into the staging dir).
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildAgent, externalPackages } from '../agents/scripts/build.mjs';

const repoRoot = path.resolve(import.meta.dirname, '..');
const agentsDir = path.join(repoRoot, 'agents');

export async function packageAgent({ outDir = path.join(repoRoot, 'dist') } = {}) {
  const manifest = JSON.parse(await readFile(path.join(agentsDir, 'package.json'), 'utf8'));
  const staging = await mkdtemp(path.join(os.tmpdir(), 'tandem-agent-package-'));
  try {
    await buildAgent({ quiet: true, outdir: path.join(staging, 'dist') });
    await mkdir(path.join(staging, 'bin'));
    await cp(path.join(agentsDir, 'bin/tandem-agent.cjs'), path.join(staging, 'bin/tandem-agent.cjs'));
    await mkdir(path.join(staging, 'native'));
    for (const file of ['binding.gyp', 'nowait-io.c', 'sd-notify.c', 'install.cjs']) {
      await cp(path.join(agentsDir, 'native', file), path.join(staging, 'native', file));
    }
    await cp(path.join(repoRoot, 'packaging/systemd'), path.join(staging, 'systemd'), { recursive: true });
    await cp(path.join(repoRoot, 'packaging/prometheus'), path.join(staging, 'prometheus'), { recursive: true });
    await cp(path.join(repoRoot, 'packaging/install-agent.sh'), path.join(staging, 'install-agent.sh'));
    const dependencies = Object.fromEntries(Object.entries(manifest.dependencies).filter(([name]) => externalPackages.includes(name)));
    const packaged = {
      name: manifest.name,
      version: manifest.version,
      description: manifest.description,
      license: 'UNLICENSED',
      type: 'module',
      bin: manifest.bin,
      engines: { node: '>=20' },
      os: ['linux'],
      scripts: { install: 'node native/install.cjs' },
      dependencies,
      files: ['bin/', 'dist/', 'native/binding.gyp', 'native/*.c', 'native/install.cjs', 'systemd/', 'prometheus/', 'install-agent.sh'],
    };
    await writeFile(path.join(staging, 'package.json'), `${JSON.stringify(packaged, null, 2)}\n`);
    await mkdir(outDir, { recursive: true });
    const output = execFileSync('npm', ['pack', '--json', '--pack-destination', outDir], { cwd: staging, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const [{ filename }] = JSON.parse(output);
    return path.join(outDir, filename);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

if (import.meta.filename === process.argv[1]) {
  const at = process.argv.indexOf('--out');
  const outDir = at > 0 ? path.resolve(process.argv[at + 1] ?? '') : undefined;
  if (at > 0 && !process.argv[at + 1]) {
    console.error('error: bad-request: --out needs a directory');
    process.exit(2);
  }
  console.log(await packageAgent({ outDir }));
}
