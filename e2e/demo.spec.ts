import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, test, type Page, type TestInfo } from '@playwright/test';
import { agentCli } from '../scripts/lib/agents.mjs';
import { SitesPage } from './pages/sites-page.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');

interface Started {
  child: ChildProcess;
  output: () => string;
  url: string;
  exited: Promise<number | null>;
}

/** `npm start` on a demo dir, resolved once it printed the console's address. */
async function npmStart(demoDir: string, ...extra: string[]): Promise<Started> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'scripts/start.mjs'), '--data', demoDir, '--browser', ...extra], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = /open (http:\/\/127\.0\.0\.1:\d+\/#token=\w+)/;
  await expect.poll(() => address.exec(output)?.[1] ?? (child.exitCode !== null ? `exited: ${output}` : undefined), { timeout: 240_000, message: `npm start output:\n${output}` }).toMatch(/^http/);
  return { child, output: () => output, url: address.exec(output)![1], exited };
}

const cli = async (dataDir: string, ...args: string[]) => JSON.parse(await agentCli([...args, '--json', '--data', dataDir]));
const allocated = async (dataDir: string, volume: string): Promise<number> =>
  ((await cli(dataDir, 'volume', 'list')).volumes as { name: string; allocatedBytes: number }[]).find((each) => each.name === volume)!.allocatedBytes;

/** The scenario on a demo dir (the test removes the dir afterwards, also when this fails). */
async function demoScenario(demoDir: string, page: Page, testInfo: TestInfo): Promise<void> {
  const primary = path.join(demoDir, 'primary');
  const secondary = path.join(demoDir, 'secondary');
  let started = await npmStart(demoDir);
  try {
    const { sessions } = await cli(primary, 'session', 'list');
    const byName = (name: string) => sessions.find((session: { name: string }) => session.name === name);
    expect(byName('db-mirror')).toMatchObject({ type: 'sync', state: 'prepared', h1Site: 'primary', h2Site: 'secondary', direction: 'h1-h2' });
    expect(byName('logs-mirror')).toMatchObject({ type: 'async', state: 'prepared', h1Site: 'primary', h2Site: 'secondary', direction: 'h1-h2' });
    const cluster = await cli(primary, 'cluster', 'show', 'prod');
    expect(cluster.members.map((member: { session: string }) => member.session).sort()).toEqual(['db-mirror', 'logs-mirror']);
    // The master data set takes a record every consolidation.
    await expect.poll(async () => (await cli(primary, 'cluster', 'show', 'prod')).masterDataSet.records, { timeout: 30_000 }).toBeGreaterThan(cluster.masterDataSet.records);
    const flash = await cli(primary, 'flash', 'show', 'db-nightly');
    expect(flash.options.backgroundCopy).toBe(true);
    expect(flash.pairs).toMatchObject([{ source: 'db-data', target: 'db-data-pit' }]);
    await expect.poll(async () => (await cli(primary, 'flash', 'show', 'db-nightly')).state, { timeout: 120_000 }).toBe('idle-copied');

    // The workload's writes arrive: new tracks at the primary, mirrored to the secondary, and seen by the flash copy's change recording.
    const [primaryBefore, replicaBefore] = [await allocated(primary, 'db-data'), await allocated(secondary, 'db-data-replica')];
    await expect.poll(() => allocated(primary, 'db-data'), { timeout: 60_000 }).toBeGreaterThan(primaryBefore);
    await expect.poll(() => allocated(secondary, 'db-data-replica'), { timeout: 60_000 }).toBeGreaterThan(replicaBefore);
    await expect.poll(async () => (await cli(primary, 'flash', 'show', 'db-nightly')).pairs[0].changedTracks.source, { timeout: 60_000 }).toBeGreaterThan(0);

    const sites = new SitesPage(page);
    await page.goto(started.url);
    await expect(sites.link('primary', 'secondary').getByTestId('link-state')).toHaveText('link up');
    for (const [name, mode] of [['db-mirror', 'sync'], ['logs-mirror', 'async']]) {
      const row = sites.linkSession('primary', 'secondary', name);
      await expect(row.getByTestId('link-session-direction')).toContainText('primary → secondary');
      await expect(row.getByTestId('link-session-mode')).toHaveText(mode);
      await expect(row.getByTestId('link-session-state')).toContainText('Prepared');
    }
    await page.screenshot({ path: testInfo.outputPath('demo-overview.png'), fullPage: true });

    // The secondary agent dies: the overview says so, never "link up".
    const { pid } = JSON.parse(await readFile(path.join(secondary, 'run.json'), 'utf8')) as { pid: number };
    process.kill(pid, 'SIGKILL');
    await expect(sites.link('primary', 'secondary').getByTestId('link-state')).toHaveText(/link (down|connecting)/, { timeout: 30_000 });
    await expect(sites.link('primary', 'secondary').getByTestId('link-end-secondary')).toContainText('unknown');
    await expect(sites.linkSession('primary', 'secondary', 'db-mirror').getByTestId('link-session-state')).not.toContainText('Normal', { timeout: 30_000 });
    await page.screenshot({ path: testInfo.outputPath('demo-overview-secondary-gone.png'), fullPage: true });
  } finally {
    started.child.kill('SIGINT');
    expect(await started.exited).toBe(0);
  }

  // Again on the same demo dir, without the workload: everything is found, nothing made twice.
  started = await npmStart(demoDir, '--quiet');
  try {
    expect(started.output()).toContain('--quiet: no workload');
    expect(started.output()).not.toMatch(/\[tandem\] (defined|created volume|flash copy|paired agent|started session)/);
    expect((await cli(primary, 'session', 'list')).sessions).toHaveLength(2);
    expect((await cli(primary, 'flash', 'list')).sessions).toHaveLength(1);
    expect((await cli(primary, 'cluster', 'list')).clusters).toHaveLength(1);
  } finally {
    started.child.kill('SIGINT');
    expect(await started.exited).toBe(0);
  }
}

/**
 * The demo shows the product: `npm start` makes a sync and an async session
 * running in one cluster with its master data set, a flash copy with
 * background copy, and a workload whose writes arrive at both sites; the
 * sites overview shows the link and each session's direction, and the truth
 * once the secondary agent is gone. A second `npm start` finds it all.
 */
test('npm start seeds running sessions in a cluster, a flash copy and a workload; the overview shows links and directions', async ({ page }, testInfo) => {
  test.setTimeout(480_000);
  const demoDir = await mkdtemp(path.join(os.tmpdir(), 'tandem-demo-'));
  try {
    await demoScenario(demoDir, page, testInfo);
  } finally {
    await rm(demoDir, { recursive: true, force: true });
  }
});
