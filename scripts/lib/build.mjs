// Builds the console (electron-vite) when the sources are newer than out/.
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from './agents.mjs';

async function newestMtime(dir) {
  let newest = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (!entry.isFile() || entry.parentPath.includes('node_modules')) continue;
    newest = Math.max(newest, (await stat(path.join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}

export async function buildIfStale(log = console.log) {
  const built = await stat(path.join(repoRoot, 'out/renderer/index.html')).then((info) => info.mtimeMs, () => 0);
  const sources = Math.max(
    ...(await Promise.all(['main/src', 'preload/src', 'renderer', 'contract/src'].map((dir) => newestMtime(path.join(repoRoot, dir))))),
    await stat(path.join(repoRoot, 'electron.vite.config.ts')).then((info) => info.mtimeMs, () => 0),
  );
  if (built > sources) return;
  log('building the console (electron-vite build)…');
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'node_modules/electron-vite/bin/electron-vite.js'), 'build'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (exitCode) => resolve(exitCode ?? 1));
  });
  if (code !== 0) throw new Error('electron-vite build failed');
}
