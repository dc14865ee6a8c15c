import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Locator, Page } from '@playwright/test';
import { FaultProxy } from '../agents/test/helpers/fault-proxy.ts';
import { agentCli, startAgent, type RunningAgent } from '../scripts/lib/agents.mjs';
import { consoleApi } from '../scripts/lib/backend.mjs';
import { ConsolePage } from './pages/console-page.ts';
import { SessionsPage } from './pages/sessions-page.ts';
import { expect, screenshot, test } from './support/fixtures.ts';
import { startMirrorWorld, type MirrorWorld } from './support/mirror-world.ts';

const execFileAsync = promisify(execFile);
const mib = 1024 * 1024;
const session = 'e2e-gold';
const cluster = 'e2e-ops';
const flash = 'e2e-snap';
/** What the console must show after a failure, measured from the failure. */
const noticeMs = 10_000;
/** A restarted agent, reconnected and resynced: generous on a loaded machine (states are waited for, not times). */
const recoveryMs = 120_000;

async function qemuIo(nbdAddress: string, volume: string, command: string): Promise<void> {
  await execFileAsync('qemu-io', ['-f', 'raw', '-c', command, `nbd://${nbdAddress}/${volume}`], { timeout: 60_000 });
}

/** A clean stop (SIGTERM), to start it again differently. */
async function stopAgent(agent: RunningAgent): Promise<void> {
  await agent.stop();
}

/** kill -9, as a crash or a pulled plug would. */
async function killAgent(agent: RunningAgent): Promise<void> {
  agent.process.kill('SIGKILL');
  await agent.exited;
}

/** The same agent again, on the same ports (the console and the other site know it by them); `env` e.g. to set its clock wrong. */
function restartAgent(agent: RunningAgent, env?: Record<string, string>): Promise<RunningAgent> {
  const port = (address: string) => Number(address.split(':').at(-1));
  return startAgent({ dataDir: agent.dataDir, apiPort: port(agent.apiAddress), nbdPort: port(agent.nbdAddress), linkPort: port(agent.linkAddress), env });
}

/** Each expectation gets what is left of the 10 s since the failure, so all of them hold within 10 s of it. */
function within(since: number): { timeout: number } {
  return { timeout: Math.max(500, since + noticeMs - Date.now()) };
}

/**
 * The failure views of the console, with real agents: a sync session
 * primary -> secondary in a cluster whose processor is at primary, and a
 * flash copy at primary. For each failure (the primary agent killed, the
 * secondary agent killed, the link between them cut by a fault proxy, the
 * secondary's clock 2 min ahead, the secondary's pool full, the deletion of
 * a live target volume attempted) what the console shows within 10 s of it,
 * and after recovery. Every wait is for a state.
 */
test.describe.serial('failures: what the console shows within 10 s, and after recovery', () => {
  let world: MirrorWorld;
  let primary: RunningAgent;
  let secondary: RunningAgent;

  test.beforeAll(async () => {
    test.setTimeout(240_000);
    world = await startMirrorWorld({ reconnectMaxMs: 2000 });
    ({ primary, secondary } = world);
    const ids = world.siteIds;
    const api = (method: string, route: string, body?: unknown) => consoleApi(world.backend, method, route, body);
    await api('POST', `/api/sites/${ids.primary}/peers`, { otherSiteId: ids.secondary });
    for (const [site, name, size] of [
      [ids.primary, 'gold-db', 16],
      [ids.primary, 'gold-web', 16],
      [ids.secondary, 'gold-db-copy', 16],
      [ids.secondary, 'gold-web-copy', 16],
      [ids.primary, 'snap-src', 8],
      [ids.primary, 'snap-pit', 8],
    ] as const) {
      await api('POST', `/api/sites/${site}/volumes`, { name, sizeBytes: size * mib });
    }
    await qemuIo(primary.nbdAddress, 'gold-db', 'write -P 0x42 0 1M');
    await api('POST', `/api/sites/${ids.primary}/sessions`, { name: session, type: 'sync', peer: 'secondary' });
    await api('POST', `/api/sites/${ids.primary}/sessions/${session}/pairs`, { h1Volume: 'gold-db', h2Volume: 'gold-db-copy' });
    await api('POST', `/api/sites/${ids.primary}/sessions/${session}/pairs`, { h1Volume: 'gold-web', h2Volume: 'gold-web-copy' });
    await api('POST', `/api/sites/${ids.primary}/sessions/${session}/actions/start`, {});
    await expect.poll(async () => ((await api('GET', `/api/sites/${ids.primary}/sessions/${session}`)) as { state: string }).state, { timeout: 120_000 }).toBe('prepared');
    await api('POST', `/api/sites/${ids.primary}/clusters`, { name: cluster, intervalSeconds: 0.5 });
    await api('POST', `/api/sites/${ids.primary}/clusters/${cluster}/members`, { session });
    await api('POST', `/api/sites/${ids.primary}/flash-sessions`, { name: flash, pairs: [{ source: 'snap-src', target: 'snap-pit' }] });
  });

  test.afterAll(async () => {
    // The world stops the agents it started; these may be their restarted successors.
    await world?.stop();
    await Promise.allSettled([primary?.stop(), secondary?.stop()]);
  });

  async function openSessions(page: Page): Promise<{ sessions: SessionsPage; card: Locator }> {
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(page);
    await tandem.open();
    await sessions.open();
    const card = sessions.card(session);
    await expect(sessions.state(session)).toContainText('Prepared', { timeout: recoveryMs });
    await expect(sessions.state(session)).toContainText('Normal', { timeout: recoveryMs });
    return { sessions, card };
  }

  /** Back to where each test starts: both sites answer, the session prepared and normal, nothing unknown. */
  async function expectRecovered(page: Page, sessions: SessionsPage, card: Locator): Promise<void> {
    await expect(sessions.unreachable('primary')).toBeHidden({ timeout: recoveryMs });
    await expect(sessions.unreachable('secondary')).toBeHidden({ timeout: recoveryMs });
    await expect(sessions.state(session)).toContainText('Prepared', { timeout: recoveryMs });
    await expect(sessions.state(session)).toContainText('Normal', { timeout: recoveryMs });
    await expect(card.getByTestId('session-view-unknown-primary')).toBeHidden();
    await expect(card.getByTestId('session-view-unknown-secondary')).toBeHidden();
    await expect(sessions.peer(session, 'secondary')).toContainText('secondary (target): connected');
    await expect(page.getByTestId('cluster-gaps')).toBeHidden();
    await expect(page.getByTestId('flash-gap-primary')).toBeHidden();
    await expect(sessions.cluster(cluster).getByTestId('cluster-unknown')).toBeHidden();
  }

  test('the primary agent killed: its views turn unknown since then, the secondary says it lost the primary, nothing vanishes', async ({ page }, testInfo) => {
    test.setTimeout(300_000);
    const { sessions, card } = await openSessions(page);
    await expect(card.getByTestId('session-source')).toContainText('from primary');
    await expect(sessions.cluster(cluster)).toContainText('Normal');
    await expect(page.getByTestId(`flash-card-${flash}`)).toBeVisible();
    await screenshot(page, testInfo, 'failures-before');

    const killedAt = Date.now();
    await killAgent(primary);
    await expect(sessions.unreachable('primary')).toContainText('primary does not answer the console since', within(killedAt));
    // The session: the secondary's live view, in its own words; the primary's last known view, marked.
    await expect(card.getByTestId('session-source')).toContainText('from secondary', within(killedAt));
    await expect(sessions.state(session)).toContainText(/Warning|Severe/, within(killedAt));
    await expect(sessions.unknownView(session, 'primary')).toContainText(/primary: unknown since .* last known Prepared · Normal · recoverable: yes/, within(killedAt));
    await expect(sessions.peer(session, 'primary')).toContainText('primary (source): unreachable since', within(killedAt));
    await expect(card).toContainText('primary site primary unreachable since', within(killedAt));
    // Sections the primary feeds: kept as last known, with a placeholder saying why.
    await expect(page.getByTestId('cluster-gap-primary')).toContainText(/primary unreachable since .*; last known 1 cluster/, within(killedAt));
    await expect(sessions.cluster(cluster).getByTestId('cluster-unknown')).toContainText('Unknown since', within(killedAt));
    await expect(page.getByTestId('flash-gap-primary')).toContainText('last known 1 flash copy', within(killedAt));
    await expect(page.getByTestId(`flash-card-${flash}`).getByTestId('flash-unknown')).toContainText('Unknown since', within(killedAt));
    await screenshot(page, testInfo, 'failures-primary-killed');

    primary = await restartAgent(primary);
    await expectRecovered(page, sessions, card);
    await expect(card.getByTestId('session-source')).toContainText('from primary');
    await screenshot(page, testInfo, 'failures-primary-back');
  });

  test('the secondary agent killed: the primary reports it unreachable, the secondary view is unknown since then', async ({ page }, testInfo) => {
    test.setTimeout(300_000);
    const { sessions, card } = await openSessions(page);
    const killedAt = Date.now();
    await killAgent(secondary);
    await expect(sessions.unreachable('secondary')).toBeVisible(within(killedAt));
    await expect(card.getByTestId('session-source')).toContainText('from primary', within(killedAt));
    await expect(sessions.state(session)).toContainText(/Warning|Severe/, within(killedAt));
    await expect(sessions.unknownView(session, 'secondary')).toContainText('secondary: unknown since', within(killedAt));
    await expect(sessions.peer(session, 'secondary')).toContainText('secondary (target): unreachable since', within(killedAt));
    await expect(card).toContainText('secondary site secondary unreachable since', within(killedAt));
    // The cluster and the flash copy live at primary: they stay current.
    await expect(sessions.cluster(cluster).getByTestId('cluster-unknown')).toBeHidden();
    await expect(page.getByTestId('cluster-gap-secondary')).toContainText('last known no clusters');
    await screenshot(page, testInfo, 'failures-secondary-killed');

    secondary = await restartAgent(secondary);
    await expectRecovered(page, sessions, card);
    await screenshot(page, testInfo, 'failures-secondary-back');
  });

  test('the link between the sites cut: both sites answer the console, each says the other is unreachable', async ({ page }, testInfo) => {
    test.setTimeout(300_000);
    // Each agent dials the other through its own fault proxy.
    const toSecondary = await FaultProxy.start({ host: '127.0.0.1', port: Number(secondary.linkAddress.split(':').at(-1)) });
    const toPrimary = await FaultProxy.start({ host: '127.0.0.1', port: Number(primary.linkAddress.split(':').at(-1)) });
    try {
      await agentCli(['peers', 'set-link', 'secondary', toSecondary.address, '--data', primary.dataDir]);
      await agentCli(['peers', 'set-link', 'primary', toPrimary.address, '--data', secondary.dataDir]);
      const { sessions, card } = await openSessions(page);
      await expect(sessions.peer(session, 'secondary')).toContainText('connected', { timeout: recoveryMs });

      const cutAt = Date.now();
      for (const proxy of [toSecondary, toPrimary]) {
        proxy.blackhole(true);
        proxy.resetAll();
      }
      await expect(sessions.peer(session, 'secondary')).toContainText('secondary (target): unreachable since', within(cutAt));
      await expect(sessions.card(session).getByTestId('session-peer-primary-from-secondary')).toContainText('primary (source): unreachable since', within(cutAt));
      await expect(sessions.state(session)).toContainText(/Warning|Severe/, within(cutAt));
      await expect(card).toContainText('secondary site secondary unreachable since', within(cutAt));
      // The console reaches both agents: nothing of theirs is unknown, each tells its own side.
      await expect(sessions.unreachable('primary')).toBeHidden();
      await expect(sessions.unreachable('secondary')).toBeHidden();
      await expect(card.getByTestId('session-view-unknown-secondary')).toBeHidden();
      await screenshot(page, testInfo, 'failures-link-cut');

      for (const proxy of [toSecondary, toPrimary]) proxy.blackhole(false);
      await expectRecovered(page, sessions, card);
      await screenshot(page, testInfo, 'failures-link-back');
    } finally {
      await agentCli(['peers', 'set-link', 'secondary', secondary.linkAddress, '--data', primary.dataDir]).catch(() => undefined);
      await agentCli(['peers', 'set-link', 'primary', primary.linkAddress, '--data', secondary.dataDir]).catch(() => undefined);
      await Promise.all([toSecondary.close(), toPrimary.close()]);
    }
  });

  test("clock skew between the sites: the secondary's clock set 2 min ahead is said beside the state's age and in the health; set right, it goes", async ({ page }, testInfo) => {
    test.setTimeout(300_000);
    const { sessions, card } = await openSessions(page);
    await expect(card.getByTestId('peer-clock-secondary')).toBeHidden();
    // The secondary's host clock set 2 minutes ahead (its agent's wall clock only: TANDEM_CLOCK_SKEW_MS).
    await stopAgent(secondary);
    secondary = await restartAgent(secondary, { TANDEM_CLOCK_SKEW_MS: '120000' });
    const skewedAt = Date.now();
    await expect(card.getByTestId('session-source')).toContainText('from primary', within(skewedAt));
    await expect(card.getByTestId('peer-clock-secondary')).toHaveText("secondary's clock is 2 min ahead of primary's", within(skewedAt));
    await expect(sessions.state(session)).toContainText('Warning', within(skewedAt));
    await expect(card).toContainText(/the clock of secondary is 1[12]\d\.\d s ahead of this agent's .*times are shown in primary's clock/, within(skewedAt));
    // The times shown stay the primary's: no exposure of 2 minutes, the state's age is the console's own count.
    await expect(sessions.state(session)).toContainText('Prepared');
    await expect(sessions.peer(session, 'secondary')).toContainText('secondary (target): connected');
    // What the secondary sees is in its own clock, and labelled so.
    await expect(card.getByTestId('session-peers-from-secondary')).toContainText("secondary sees (times in secondary's clock):", within(skewedAt));
    // The exposure chart draws the secondary's samples in the console's time (its history is read every 10 s).
    await expect(card.getByTestId('exposure-site-secondary')).toContainText(/its clock is 1[12]\d s ahead of this console's: drawn in this console's time/, { timeout: 30_000 });
    await screenshot(page, testInfo, 'failures-clock-skew');

    await stopAgent(secondary);
    secondary = await restartAgent(secondary, { TANDEM_CLOCK_SKEW_MS: '0' });
    await expectRecovered(page, sessions, card);
    await expect(card.getByTestId('peer-clock-secondary')).toBeHidden({ timeout: recoveryMs });
    await expect(card).not.toContainText('the clock of secondary');
    await screenshot(page, testInfo, 'failures-clock-back');
  });

  test("the secondary's pool full while mirroring: the session suspends saying where and how full, within 10 s; room made and resumed, Prepared with the same bytes", async ({ page }, testInfo) => {
    test.skip(process.getuid?.() !== 0, "mounting a small file system on the secondary's pool needs root");
    test.setTimeout(300_000);
    const pool = path.join(secondary.dataDir, 'pool');
    const api = (method: string, route: string, body?: unknown) => consoleApi(world.backend, method, route, body);
    // The secondary's pool on a file system of its own with 4 MiB to spare (what it holds copied over).
    await stopAgent(secondary);
    const used = Number((await execFileAsync('du', ['-s', '-B1', pool])).stdout.split(/\s/)[0]);
    const aside = await mkdtemp(path.join(os.tmpdir(), 'tandem-e2e-pool-'));
    await execFileAsync('cp', ['-a', '--sparse=always', `${pool}/.`, aside]);
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', `size=${used + 4 * mib},mode=0700`, 'tandem-e2e-pool', pool]);
    try {
      await execFileAsync('cp', ['-a', '--sparse=always', `${aside}/.`, pool]);
      secondary = await restartAgent(secondary);
      // The primary learns of the restart at its next mirrored write (the secondary's mirroring run is gone), suspends
      // and resumes by itself: one write, then Prepared with nothing marked, so the pool runs full in Prepared.
      await qemuIo(primary.nbdAddress, 'gold-web', 'write -P 0x44 0 64k');
      await expect
        .poll(async () => {
          const view = (await api('GET', `/api/sites/${world.siteIds.primary}/sessions/${session}`)) as { state: string; pairs: Array<{ outOfSyncTracks: number }> };
          return view.state === 'prepared' && view.pairs.every((pair) => pair.outOfSyncTracks === 0);
        }, { timeout: recoveryMs })
        .toBe(true);
      const { sessions, card } = await openSessions(page);
      await api('POST', `/api/sites/${world.siteIds.secondary}/volumes`, { name: 'filler', sizeBytes: 8 * mib });
      // 3 MiB taken: the next 3 MiB do not fit; once the filler is deleted they do.
      await qemuIo(secondary.nbdAddress, 'filler', 'write -P 0x11 0 3M');

      const writtenAt = Date.now();
      await qemuIo(primary.nbdAddress, 'gold-db', 'write -P 0x43 2M 3M');
      await expect(sessions.state(session)).toContainText('Suspended', within(writtenAt));
      await expect(sessions.state(session)).toContainText('Severe', within(writtenAt));
      await expect(card).toContainText(/the pool of secondary is full \(the pool file system is full\): [\d.]+ MiB in use by \d+ volume\(s\) and \d+ snapshot\(s\), [\d.]+ MiB free on the file system holding it/, within(writtenAt));
      await expect(card).toContainText('make room at secondary (delete volumes or snapshots there, or grow the file system holding its pool), then resume', within(writtenAt));
      await expect(card.getByTestId('pair-row-gold-db')).toContainText('suspended', within(writtenAt));
      // Suspended from Prepared: the secondary holds the image of the moment mirroring stopped.
      await expect(card.getByTestId('recoverable')).toContainText('yes', within(writtenAt));
      // Tracks the secondary did not take stay marked at the primary (nothing lost): what the console reads.
      const atPrimary = (await api('GET', `/api/sites/${world.siteIds.primary}/sessions/${session}`)) as { pairs: Array<{ h1Volume: string; outOfSyncTracks: number }> };
      expect(atPrimary.pairs.find((pair) => pair.h1Volume === 'gold-db')!.outOfSyncTracks).toBeGreaterThan(0);
      await screenshot(page, testInfo, 'failures-pool-full');

      // Room made at the secondary (the filler deleted), then Resume in the console.
      await api('DELETE', `/api/sites/${world.siteIds.secondary}/volumes/filler`);
      await card.getByRole('button', { name: 'Resume' }).click();
      await page.getByRole('dialog', { name: `Resume ${session}?` }).getByRole('button', { name: 'Resume' }).click();
      await expectRecovered(page, sessions, card);
      await expect(card).not.toContainText('is full');
      await expect(card.getByTestId('pair-row-gold-db')).toContainText('duplex');
      await execFileAsync('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', `nbd://${primary.nbdAddress}/gold-db`, `nbd://${secondary.nbdAddress}/gold-db-copy`], { timeout: 60_000 });
      await screenshot(page, testInfo, 'failures-pool-back');
    } finally {
      // The pool back on the ordinary file system, as the later tests expect.
      await stopAgent(secondary);
      await rm(aside, { recursive: true, force: true });
      await mkdir(aside);
      await execFileAsync('cp', ['-a', '--sparse=always', `${pool}/.`, aside]);
      await execFileAsync('umount', [pool]);
      await execFileAsync('cp', ['-a', '--sparse=always', `${aside}/.`, pool]);
      await rm(aside, { recursive: true, force: true });
      secondary = await restartAgent(secondary);
    }
  });

  test('deleting a live target volume: refused, the dependents and the step first are shown; the step taken, the delete goes through', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(page);
    await tandem.open();
    await tandem.openSite('secondary');
    const row = tandem.volumes.row('gold-db-copy');
    await expect(row.getByTestId('mirror-role-h2')).toHaveText(`H2 of ${session} ← primary`);
    await expect(tandem.volumes.row('gold-db-copy')).toBeVisible();

    let dialog = await tandem.volumes.delete('gold-db-copy');
    await expect(dialog.getByTestId('volume-in-use')).toContainText(`It is the secondary (H2) volume of copy set gold-db → gold-db-copy in session ${session} (prepared).`);
    await dialog.getByLabel('Name').fill('gold-db-copy');
    const triedAt = Date.now();
    await dialog.getByRole('button', { name: 'Delete gold-db-copy' }).click();
    await expect(dialog.getByTestId('volume-busy-message')).toContainText(`remove it from session ${session} first`, within(triedAt));
    await expect(dialog.getByTestId('volume-in-use')).toContainText('the agent refused to delete it', within(triedAt));
    await expect(dialog.getByRole('button', { name: `Remove from session ${session} first` })).toBeEnabled(within(triedAt));
    await expect(dialog.getByTestId('problem')).toHaveCount(0);
    await screenshot(page, testInfo, 'failures-delete-live-target');
    // Or open the session instead: its own URL, kept across a reload.
    await dialog.getByRole('button', { name: `Open session ${session}` }).click();
    await expect(page).toHaveURL(new RegExp(`#/sessions/${session}$`));
    await expect(sessions.card(session)).toBeVisible();
    await page.reload();
    await expect(page.getByRole('heading', { name: 'Sessions', level: 2 })).toBeVisible();
    await expect(sessions.state(session)).toContainText('Prepared');
    await expect(sessions.card(session).getByTestId('pair-row-gold-db')).toContainText('duplex');

    // The other copy set: the step taken from the dialog, then the delete goes through; the session keeps its other copy set.
    await tandem.openSite('secondary');
    dialog = await tandem.volumes.delete('gold-web-copy');
    await dialog.getByRole('button', { name: `Remove from session ${session} first` }).click();
    await expect(dialog.getByTestId('dependent-removed')).toContainText(`Removed from session ${session}`);
    await dialog.getByLabel('Name').fill('gold-web-copy');
    await dialog.getByRole('button', { name: 'Delete gold-web-copy' }).click();
    await expect(dialog).toBeHidden();
    await expect(tandem.volumes.row('gold-web-copy')).toBeHidden();
    await sessions.open();
    await expect(sessions.card(session).getByTestId('pair-row-gold-web')).toBeHidden();
    await expect(sessions.state(session)).toContainText('Prepared');
  });
});
