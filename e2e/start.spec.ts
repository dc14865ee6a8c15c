import { spawn } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';

const repoRoot = path.resolve(import.meta.dirname, '..');

/** `npm start` as a new user runs it: two demo sites paired, the console in a browser; Ctrl-C stops it all. */
test('npm start serves the console with both demo sites connected, and Ctrl-C stops everything', async ({ page }, testInfo) => {
  test.setTimeout(180_000);
  const demoDir = await mkdtemp(path.join(os.tmpdir(), 'tandem-start-'));
  const child = spawn(process.execPath, [path.join(repoRoot, 'scripts/start.mjs'), '--data', demoDir, '--browser'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await expect.poll(() => /open (http:\/\/127\.0\.0\.1:\d+\/#token=\w+)/.exec(output)?.[1], { timeout: 150_000, message: `npm start output:\n${output}` }).toBeTruthy();
    const url = /open (http:\/\/127\.0\.0\.1:\d+\/#token=\w+)/.exec(output)![1];
    await page.goto(url);
    for (const site of ['primary', 'secondary']) {
      await expect(page.getByTestId(`site-card-${site}`).getByTestId('connection-state')).toHaveText('connected');
    }
    await page.getByTestId('site-card-primary').getByRole('button', { name: 'Open volumes' }).click();
    await expect(page.getByTestId('volume-row-db-data.nightly')).toContainText('snapshot of db-data');
    await page.screenshot({ path: testInfo.outputPath('npm-start.png'), fullPage: true });
  } finally {
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  }
  // The agents removed their run.json on a clean stop: nothing is left running.
  for (const site of ['primary', 'secondary']) {
    await expect(access(path.join(demoDir, site, 'run.json'))).rejects.toThrow();
  }
  await rm(demoDir, { recursive: true, force: true });
});
