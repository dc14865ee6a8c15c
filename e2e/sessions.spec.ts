import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import Papa from 'papaparse';
import { agentCli } from '../scripts/lib/agents.mjs';
import { consoleApi } from '../scripts/lib/backend.mjs';
import { ConsolePage } from './pages/console-page.ts';
import { SessionsPage } from './pages/sessions-page.ts';
import { expect, screenshot, test } from './support/fixtures.ts';
import { startMirrorWorld, type MirrorWorld } from './support/mirror-world.ts';

const execFileAsync = promisify(execFile);

/** Writes through an agent's NBD export with qemu-io, as an application host would. */
async function qemuIo(nbdAddress: string, volume: string, command: string): Promise<void> {
  await execFileAsync('qemu-io', ['-f', 'raw', '-c', command, `nbd://${nbdAddress}/${volume}`], { timeout: 60_000 });
}

const session = 'e2e-orders';
const mib = 1024 * 1024;

test.describe.serial('mirroring sessions: create, start, fail over, fail back, reports', () => {
  let world: MirrorWorld;

  test.beforeAll(async () => {
    test.setTimeout(120_000);
    world = await startMirrorWorld();
    const { primary: primaryId, secondary: secondaryId } = world.siteIds;
    const tandem = world;
    // 16 MiB = 256 tracks of 64 KiB; a decoy of another size must not be offered as the copy.
    await consoleApi(tandem.backend, 'POST', `/api/sites/${primaryId}/volumes`, { name: 'mir-db', sizeBytes: 16 * mib });
    await consoleApi(tandem.backend, 'POST', `/api/sites/${secondaryId}/volumes`, { name: 'mir-db-copy', sizeBytes: 16 * mib });
    await consoleApi(tandem.backend, 'POST', `/api/sites/${secondaryId}/volumes`, { name: 'mir-other', sizeBytes: 32 * mib });
    // Production data before the session starts: 16 tracks.
    await qemuIo(tandem.primary.nbdAddress, 'mir-db', 'write -P 0xaa 0 1M');
  });

  test.afterAll(async () => {
    await world?.stop();
  });

  test('create a session in the wizard, start it, fail over, write at site 2, fail back with the expected preflight, verify', async ({ page }, testInfo) => {
    test.setTimeout(240_000);
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(tandem.page);
    await tandem.open();
    await sessions.open();

    await sessions.create({
      name: session,
      h1Site: 'primary',
      h1Address: world.primary.apiAddress,
      h2Site: 'secondary',
      h2Address: world.secondary.apiAddress,
      copySets: [['mir-db', 'mir-db-copy']],
    });
    await expect(sessions.state(session)).toContainText('Defined');
    await screenshot(tandem.page, testInfo, 'sessions-defined');

    const start = await sessions.action(session, 'Start');
    await expect(start.getByTestId('action-consequence')).toContainText('from primary to secondary');
    await start.getByRole('button', { name: 'Start' }).click();
    await expect(sessions.state(session)).toContainText('Prepared', { timeout: 60_000 });
    await expect(sessions.state(session)).toContainText('Normal');
    await expect(sessions.card(session).getByTestId('pair-row-mir-db').getByTestId('out-of-sync')).toHaveText('0');
    await sessions.card(session).getByRole('button', { name: 'Show events' }).click();
    await expect(sessions.card(session).getByTestId('session-events-primary')).toContainText('session.');
    await screenshot(tandem.page, testInfo, 'sessions-prepared');

    // Failover: the warning names both sites and needs an acknowledgement.
    const recover = await sessions.action(session, 'Recover (failover)…');
    await expect(recover).toContainText("Recover makes the copy volumes writable at secondary; primary's changes after now will be copied back only by failback.");
    await expect(recover.getByRole('button', { name: 'Recover (failover)' })).toBeDisabled();
    await screenshot(tandem.page, testInfo, 'sessions-failover-warning');
    await recover.getByLabel('I understand what this does to both sites').check();
    await recover.getByRole('button', { name: 'Recover (failover)' }).click();
    await expect(sessions.state(session)).toContainText('Target available', { timeout: 30_000 });

    // Production moves to site 2: 3 tracks written there.
    await qemuIo(world.secondary.nbdAddress, 'mir-db-copy', 'write -P 0xcc 0 192k');

    await sessions.card(session).getByRole('button', { name: 'Failback…' }).click();
    const wizard = sessions.failbackWizard;
    await wizard.getByRole('button', { name: 'Next' }).click();
    await expect(wizard.getByTestId('preflight-bitmap-tracks')).toHaveText('3');
    await expect(wizard.getByTestId('preflight-code-tracks')).toHaveText('3');
    await expect(wizard.getByTestId('preflight-bytes')).toHaveText('192 KiB');
    await expect(wizard.getByTestId('preflight-tracks-to-copy')).toContainText('3 tracks to copy (192 KiB)');
    await expect(wizard.getByTestId('preflight-age')).toContainText('Computed by');
    await screenshot(tandem.page, testInfo, 'failback-preflight');
    // Production goes on at site 2 while the wizard is open: one more track. No event says so; the wizard notices and says the preflight is stale.
    await qemuIo(world.secondary.nbdAddress, 'mir-db-copy', 'write -P 0xcd 4M 64k');
    await expect(wizard.getByTestId('preflight-stale')).toContainText('4 tracks changed now, 3 when computed', { timeout: 30_000 });
    await screenshot(tandem.page, testInfo, 'failback-preflight-stale');
    await wizard.getByRole('button', { name: 'Refresh' }).click();
    await expect(wizard.getByTestId('preflight-bitmap-tracks')).toHaveText('4');
    await expect(wizard.getByTestId('preflight-stale')).toBeHidden();
    await wizard.getByRole('button', { name: 'Next' }).click();
    await expect(wizard.getByLabel(/^Verify by segment codes/)).toBeChecked();
    await wizard.getByRole('button', { name: 'Next' }).click();
    await expect(wizard.getByTestId('failback-consequence')).toContainText("copies secondary's changes back to primary");
    // The confirm step: what the failback copies, computed again on the way in.
    await expect(wizard.getByTestId('preflight-tracks-to-copy')).toContainText('4 tracks to copy (256 KiB)');
    await screenshot(tandem.page, testInfo, 'failback-confirm');
    await wizard.getByRole('button', { name: 'Start failback' }).click();
    await expect(wizard.getByTestId('failback-progress')).toBeVisible();
    await expect(wizard.getByRole('button', { name: 'Verify result' })).toBeEnabled({ timeout: 60_000 });
    await wizard.getByRole('button', { name: 'Verify result' }).click();
    await expect(wizard.getByTestId('verify-summary')).toContainText(/\d+ tracks compared, 0 differing/, { timeout: 60_000 });
    // What was copied is what the confirm step showed.
    await expect(wizard.getByTestId('copied-summary')).toContainText('The failback copied 4 tracks');
    await expect(wizard.getByTestId('copied-vs-preflight')).toContainText('said 4 tracks (256 KiB): as copied.');
    await expect(wizard.getByRole('button', { name: 'Return to primary → secondary' })).toBeVisible();
    await screenshot(tandem.page, testInfo, 'failback-verified');
    await expect(sessions.card(session).getByTestId('session-direction')).toHaveText('secondary → primary');

    // The offered way back: fail over to primary and fail back from there, ending in the original direction.
    await expect(wizard.getByRole('button', { name: 'Return to primary → secondary' })).toBeDisabled();
    await wizard.getByLabel('The applications at secondary are stopped').check();
    await wizard.getByRole('button', { name: 'Return to primary → secondary' }).click();
    await expect(wizard).toContainText('Returning: primary is the source again', { timeout: 30_000 });
    await wizard.getByRole('button', { name: 'Close' }).click();
    await expect(sessions.card(session).getByTestId('session-direction')).toHaveText('primary → secondary', { timeout: 30_000 });
    await expect(sessions.state(session)).toContainText('Prepared', { timeout: 60_000 });
    await expect(sessions.card(session).getByTestId('session-events-primary')).toContainText('session.failback');
    await screenshot(tandem.page, testInfo, 'sessions-back-to-original');
  });

  test('export the session as CSV, JSON and PDF', async ({ page }, testInfo) => {
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(tandem.page);
    await tandem.open();
    await sessions.open();
    await sessions.card(session).waitFor();

    const csvFile = await sessions.exportReport('session', session, 'CSV');
    expect(csvFile.suggestedFilename()).toMatch(/\.csv$/);
    const csv = Papa.parse<Record<string, string>>(await readFile((await csvFile.path())!, 'utf8'), { header: true, skipEmptyLines: true });
    expect(csv.errors).toEqual([]);
    const summary = csv.data.find((row) => row.record === 'session');
    expect(summary).toMatchObject({ session, state: 'prepared', direction: 'h1-h2' });
    expect(summary?.consistency_time).not.toBe('');
    // Copy sets by site and volume names, with the verify the failback ran.
    const copySet = csv.data.find((row) => row.record === 'copy-set');
    expect(copySet).toMatchObject({ session, copy_set: 'primary:mir-db -> secondary:mir-db-copy', h1_site: 'primary', h2_site: 'secondary', pair_state: 'duplex', out_of_sync_tracks: '0', track_count: '256' });
    expect(copySet?.last_verify_at).not.toBe('');
    // Both sites' events and both sites' exposure history.
    const events = csv.data.filter((row) => row.record === 'event');
    expect(events.map((row) => row.event_type)).toContain('session.failback');
    expect(new Set(events.map((row) => row.site))).toEqual(new Set(['primary', 'secondary']));
    expect(new Set(csv.data.filter((row) => row.record === 'history').map((row) => row.site))).toEqual(new Set(['primary', 'secondary']));
    expect(csv.data.filter((row) => row.record === 'site').map((row) => `${row.site}:${row.reachable}`)).toEqual(['primary:true', 'secondary:true']);

    const jsonFile = await sessions.exportReport('session', session, 'JSON');
    const report = JSON.parse(await readFile((await jsonFile.path())!, 'utf8')) as {
      kind: string;
      sessions: { session: { name: string; state: string; pairs: { h1Volume: string }[] }; events: { type: string; site: string }[]; history: { site: string; points: unknown[] }[] }[];
    };
    expect(report.kind).toBe('session');
    expect(report.sessions[0].session).toMatchObject({ name: session, state: 'prepared' });
    expect(report.sessions[0].session.pairs.map((pair) => pair.h1Volume)).toEqual(['mir-db']);
    expect(report.sessions[0].events.length).toBeGreaterThan(0);
    expect(report.sessions[0].history.map((history) => history.site)).toEqual(['primary', 'secondary']);
    expect(report.sessions[0].history.every((history) => history.points.length > 0)).toBe(true);

    const pdfFile = await sessions.exportReport('session', session, 'PDF');
    const pdf = await readFile((await pdfFile.path())!);
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(pdf.toString('latin1')).toContain(session);
    await screenshot(tandem.page, testInfo, 'sessions-after-export');
  });

  test("the exposure chart draws the agents' history of both sites, survives a reload, and switches its range", async ({ page }, testInfo) => {
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(tandem.page);
    await tandem.open();
    await sessions.open();
    const chart = sessions.card(session).getByTestId(`exposure-chart-${session}`);
    await expect(chart.getByTestId('exposure-site-primary')).toContainText('sampled at primary', { timeout: 30_000 });
    await expect(chart.getByTestId('exposure-site-secondary')).toContainText('sampled at secondary');
    await expect(chart.getByTestId('exposure-plot').locator('canvas').first()).toBeVisible();
    await expect(chart).toContainText('a point per 10 s');
    // The samples are the agents': a reload shows them again at once.
    await page.reload();
    await sessions.open();
    await expect(chart.getByTestId('exposure-plot').locator('canvas').first()).toBeVisible({ timeout: 30_000 });
    await chart.getByText('24 h', { exact: true }).click();
    await expect(chart.getByRole('radio', { name: '24 h' })).toBeChecked();
    await expect(chart.getByTestId('exposure-plot').locator('canvas').first()).toBeVisible();
    await page.setViewportSize({ width: 1024, height: 768 });
    // It fits a 1024 px window: nothing wider than the page.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1024);
    const box = (await chart.boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(1024);
    await screenshot(tandem.page, testInfo, 'sessions-exposure-chart-1024');
  });

  test('a cluster groups its sessions, and exports as a whole', async ({ page }, testInfo) => {
    await agentCli(['cluster', 'create', 'e2e-payments', '--interval', '0.5', '--data', world.primary.dataDir]);
    await agentCli(['cluster', 'add', 'e2e-payments', session, '--data', world.primary.dataDir]);
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(tandem.page);
    await tandem.open();
    await sessions.open();
    const cluster = tandem.page.getByTestId('cluster-e2e-payments');
    await expect(cluster).toContainText('Cluster e2e-payments');
    await expect(cluster).toContainText('Processor at primary');
    await expect(cluster).toContainText('Normal');
    await tandem.page.getByRole('button', { name: 'Master data set history' }).click();
    await expect(cluster.getByRole('row').nth(1)).toBeVisible();
    await screenshot(tandem.page, testInfo, 'sessions-cluster');
    await tandem.toggleTheme();
    await screenshot(tandem.page, testInfo, 'sessions-cluster-dark');
    await tandem.toggleTheme();

    const jsonFile = await sessions.exportReport('cluster', 'e2e-payments', 'JSON');
    const report = JSON.parse(await readFile((await jsonFile.path())!, 'utf8')) as { kind: string; cluster: { name: string }; sessions: { session: { name: string } }[] };
    expect(report).toMatchObject({ kind: 'cluster', cluster: { name: 'e2e-payments' } });
    expect(report.sessions.map((each) => each.session.name)).toEqual([session]);
    const csvFile = await sessions.exportReport('cluster', 'e2e-payments', 'CSV');
    const csv = Papa.parse<Record<string, string>>(await readFile((await csvFile.path())!, 'utf8'), { header: true, skipEmptyLines: true });
    expect(csv.data.filter((row) => row.record === 'copy-set').map((row) => row.session)).toEqual([session]);
    // The master data set's history: records the processor wrote (every 0.5 s).
    expect(csv.data.filter((row) => row.record === 'mds-record').length).toBeGreaterThan(0);
    const pdfFile = await sessions.exportReport('cluster', 'e2e-payments', 'PDF');
    const pdf = await readFile((await pdfFile.path())!);
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(pdf.toString('latin1')).toContain('e2e-payments');
  });

  test('add a copy set to the running session: it copies and reaches duplex while the other keeps mirroring', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    const { primary: primaryId, secondary: secondaryId } = world.siteIds;
    await consoleApi(world.backend, 'POST', `/api/sites/${primaryId}/volumes`, { name: 'mir-web', sizeBytes: 16 * mib });
    await consoleApi(world.backend, 'POST', `/api/sites/${secondaryId}/volumes`, { name: 'mir-web-copy', sizeBytes: 16 * mib });
    await qemuIo(world.primary.nbdAddress, 'mir-web', 'write -P 0x5e 0 256k');
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(tandem.page);
    await tandem.open();
    await sessions.open();
    await expect(sessions.state(session)).toContainText('Prepared', { timeout: 60_000 });
    // The failback earlier was verified by the agent itself.
    await expect(sessions.card(session).getByTestId('last-verify')).toContainText(/tracks compared, 0 differ/);

    await sessions.addCopySets(session, 'primary', 'secondary', [['mir-web', 'mir-web-copy']]);
    const added = sessions.card(session).getByTestId('pair-row-mir-web');
    await expect(added).toContainText('duplex', { timeout: 60_000 });
    await expect(added.getByTestId('out-of-sync')).toHaveText('0');
    await expect(sessions.card(session).getByTestId('pair-row-mir-db')).toContainText('duplex');
    await expect(sessions.state(session)).toContainText('Prepared', { timeout: 60_000 });
    await expect(sessions.card(session).getByRole('button', { name: 'Remove copy set mir-web' })).toBeVisible();
    await screenshot(tandem.page, testInfo, 'sessions-copy-set-added');

    // Removing it again: the confirmation says what is dropped; the other copy set keeps mirroring.
    await sessions.card(session).getByRole('button', { name: 'Remove copy set mir-web' }).click();
    const confirm = tandem.page.getByRole('dialog', { name: `Remove mir-web from ${session}?` });
    await expect(confirm.getByTestId('remove-consequence')).toContainText('primary:mir-web stops being mirrored to secondary:mir-web-copy');
    await screenshot(tandem.page, testInfo, 'sessions-remove-copy-set');
    await confirm.getByRole('button', { name: 'Remove copy set' }).click();
    await expect(added).toBeHidden({ timeout: 30_000 });
    await expect(sessions.card(session).getByTestId('pair-row-mir-db')).toContainText('duplex');
    await expect(sessions.state(session)).toContainText('Prepared');
  });
});
