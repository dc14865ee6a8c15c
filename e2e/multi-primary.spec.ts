import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { consoleApi } from '../scripts/lib/backend.mjs';
import { ConsolePage } from './pages/console-page.ts';
import { SessionsPage } from './pages/sessions-page.ts';
import { expect, screenshot, test } from './support/fixtures.ts';
import { startSitesWorld, type SitesWorld } from './support/mirror-world.ts';

const execFileAsync = promisify(execFile);

/** Writes through an agent's NBD export with qemu-io, as an application host would. */
async function qemuIo(nbdAddress: string, volume: string, command: string): Promise<void> {
  try {
    await execFileAsync('qemu-io', ['-f', 'raw', '-c', command, `nbd://${nbdAddress}/${volume}`], { timeout: 60_000 });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`qemu-io ${command} on ${volume} failed: ${stderr ?? ''} ${stdout ?? ''}`);
  }
}

/** qemu-img compare of two NBD exports: true when byte-identical. */
async function identical(a: string, b: string): Promise<boolean> {
  try {
    const { stdout } = await execFileAsync('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', a, b], { timeout: 60_000 });
    return /Images are identical/.test(stdout);
  } catch {
    return false; // exit 1: they differ
  }
}

const session = 'e2e-mp';
const mib = 1024 * 1024;
const track = 64 * 1024;

/**
 * A multi-primary async session in the console: one copy set's primary at
 * alpha (the session's H1 site), one at bravo, secondary charlie. Created in
 * the wizard, started, failed over to charlie, written there, failed back to
 * both primaries with the preflight's per-copy-set counts checked against
 * what was written, and the images compared byte by byte.
 */
test.describe.serial('multi-primary session: create with two primary sites, fail over, fail back to both', () => {
  let world: SitesWorld;
  let shots: string;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    shots = await mkdtemp(path.join(os.tmpdir(), 'tandem-e2e-mp-shots-'));
    world = await startSitesWorld(['alpha', 'bravo', 'charlie']);
    const { alpha, bravo, charlie } = world.siteIds;
    // bravo must be paired with the control agent (alpha) and with the secondary (charlie); alpha-charlie is paired in the wizard.
    await consoleApi(world.backend, 'POST', `/api/sites/${alpha}/peers`, { otherSiteId: bravo });
    await consoleApi(world.backend, 'POST', `/api/sites/${bravo}/peers`, { otherSiteId: charlie });
    // 16 MiB = 256 tracks of 64 KiB; a decoy of another size at charlie must not be offered.
    await consoleApi(world.backend, 'POST', `/api/sites/${alpha}/volumes`, { name: 'mp-a', sizeBytes: 16 * mib });
    await consoleApi(world.backend, 'POST', `/api/sites/${bravo}/volumes`, { name: 'mp-b', sizeBytes: 16 * mib });
    await consoleApi(world.backend, 'POST', `/api/sites/${charlie}/volumes`, { name: 'mp-a-copy', sizeBytes: 16 * mib });
    await consoleApi(world.backend, 'POST', `/api/sites/${charlie}/volumes`, { name: 'mp-b-copy', sizeBytes: 16 * mib });
    await consoleApi(world.backend, 'POST', `/api/sites/${charlie}/volumes`, { name: 'mp-decoy', sizeBytes: 32 * mib });
    // Production data before the session starts.
    await qemuIo(world.agents.alpha.nbdAddress, 'mp-a', 'write -P 0xa1 0 1M');
    await qemuIo(world.agents.bravo.nbdAddress, 'mp-b', 'write -P 0xb1 0 1M');
    await qemuIo(world.agents.bravo.nbdAddress, 'mp-b', 'write -P 0xbb 4M 64k');
  });

  test.afterAll(async () => {
    await world?.stop();
  });

  test('create, start, fail over at charlie, write there, fail back with the per-copy-set preflight, verified, identical images', async ({ page }, testInfo) => {
    test.setTimeout(300_000);
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(tandem.page);
    await tandem.open();
    await sessions.open();

    await sessions.create({
      name: session,
      type: 'Async',
      h1Site: 'alpha',
      h1Address: world.agents.alpha.apiAddress,
      h2Site: 'charlie',
      h2Address: world.agents.charlie.apiAddress,
      copySets: [
        ['mp-a', 'mp-a-copy'],
        ['mp-b', 'mp-b-copy', 'bravo'],
      ],
      review: async (review) => {
        await expect(review).toContainText('from alpha, bravo (H1, sources) to charlie (H2, target), 2 copy sets');
        await expect(review.getByTestId('review-copy-set-mp-b')).toHaveText('bravo:mp-b → charlie:mp-b-copy (primary site bravo)');
        await expect(review.getByTestId('review-copy-set-mp-a')).toHaveText('alpha:mp-a → charlie:mp-a-copy (primary site alpha)');
        await sessions.createWizard.screenshot({ path: path.join(shots, 'mp-create-review.png'), animations: 'disabled' });
      },
    });
    const card = sessions.card(session);
    await expect(sessions.state(session)).toContainText('Defined');
    await expect(card.getByTestId('pair-row-mp-b').getByTestId('primary-site')).toHaveText('primary at bravo');
    await expect(card.getByTestId('pair-row-mp-a').getByTestId('primary-site')).toHaveText('primary at alpha');

    const start = await sessions.action(session, 'Start');
    await start.getByRole('button', { name: 'Start' }).click();
    await expect(sessions.state(session)).toContainText('Prepared', { timeout: 90_000 });
    await expect(card.getByTestId('pair-row-mp-a').getByTestId('out-of-sync')).toHaveText('0', { timeout: 30_000 });
    await expect(card.getByTestId('pair-row-mp-b').getByTestId('out-of-sync')).toHaveText('0', { timeout: 30_000 });
    await expect(card.getByTestId('session-direction')).toHaveText('alpha, bravo → charlie');
    await expect(card.getByTestId('session-sites')).toHaveText('H1 alpha, bravo · H2 charlie');
    await card.screenshot({ path: path.join(shots, 'mp-card-prepared.png'), animations: 'disabled' });

    const recover = await sessions.action(session, 'Recover (failover)…');
    await expect(recover.getByRole('button', { name: 'Recover (failover)' })).toBeDisabled();
    await recover.getByLabel('I understand what this does to both sites').check();
    await recover.getByRole('button', { name: 'Recover (failover)' }).click();
    await expect(sessions.state(session))
      .toContainText('Target available', { timeout: 60_000 })
      .catch(async (error: unknown) => {
        for (const site of ['alpha', 'bravo', 'charlie']) {
          const events = await consoleApi(world.backend, 'GET', `/api/sites/${world.siteIds[site]}/sessions/${session}/events`).catch(String);
          const list = await consoleApi(world.backend, 'GET', `/api/sites/${world.siteIds[site]}/sessions`).catch(String);
          console.log(`${site} sessions: ${JSON.stringify(list)}\n${site} events: ${JSON.stringify(events)}`);
        }
        throw error;
      });

    // The card shows the control agent's view. Charlie is writable before it tells the primary sites (in parallel; the
    // recover completes once they know): every site of the session shows the same state, the member bravo too.
    const stateAt = async (site: string) =>
      ((await consoleApi(world.backend, 'GET', `/api/sites/${world.siteIds[site]}/sessions`)) as { sessions: { name: string; state: string }[] }).sessions.find((each) => each.name === session)?.state;
    for (const site of ['alpha', 'bravo', 'charlie']) {
      await expect.poll(async () => `${site}: ${await stateAt(site)}`, { timeout: 10_000 }).toBe(`${site}: target-available`);
    }

    // Production at charlie: mp-a-copy tracks 0..2 (new data); mp-b-copy tracks 16..20 (new data) and track 64 rewritten
    // with the bytes it already holds (0xbb, mirrored from bravo): a bitmap marks it, the codes find it equal.
    await qemuIo(world.agents.charlie.nbdAddress, 'mp-a-copy', 'write -P 0xc1 0 192k');
    await qemuIo(world.agents.charlie.nbdAddress, 'mp-b-copy', 'write -P 0xc2 1M 320k');
    await qemuIo(world.agents.charlie.nbdAddress, 'mp-b-copy', 'write -P 0xbb 4M 64k');
    const expected = {
      a: { bitmap: 3, codes: 3 },
      b: { bitmap: 6, codes: 5 },
    };

    await card.getByRole('button', { name: 'Failback…' }).click();
    const wizard = sessions.failbackWizard;
    await wizard.getByRole('button', { name: 'Next' }).click();
    const rowA = wizard.getByTestId(/^preflight-pair-/).filter({ hasText: 'mp-a ⇄ mp-a-copy' });
    const rowB = wizard.getByTestId(/^preflight-pair-/).filter({ hasText: 'mp-b ⇄ mp-b-copy' });
    for (const [row, site, counts] of [
      [rowA, 'alpha', expected.a],
      [rowB, 'bravo', expected.b],
    ] as const) {
      await expect(row.getByTestId('preflight-primary-site')).toHaveText(site);
      // Track counts always come with their bytes (the size on a line of its own under the count).
      await expect(row.getByTestId('preflight-pair-bitmap')).toHaveText(`${counts.bitmap}${(counts.bitmap * track) / 1024} KiB`);
      await expect(row.getByTestId('preflight-pair-codes')).toHaveText(`${counts.codes}${(counts.codes * track) / 1024} KiB`);
      await expect(row.getByTestId('preflight-pair-to-copy')).toHaveText(String(counts.codes));
      await expect(row.getByTestId('preflight-pair-bytes')).toHaveText(`${(counts.codes * track) / 1024} KiB`);
    }
    const totalBitmap = expected.a.bitmap + expected.b.bitmap;
    const totalCodes = expected.a.codes + expected.b.codes;
    await expect(wizard.getByTestId('preflight-bitmap-tracks')).toHaveText(String(totalBitmap));
    await expect(wizard.getByTestId('preflight-code-tracks')).toHaveText(String(totalCodes));
    await expect(wizard.getByTestId('preflight-bytes')).toHaveText(`${(totalCodes * track) / 1024} KiB`);
    await expect(wizard.getByTestId('preflight-tracks-to-copy')).toHaveText(`${totalCodes} tracks to copy (${(totalCodes * track) / 1024} KiB), to 2 sites (alpha, bravo)`);
    await expect(wizard.getByTestId('preflight-total-to-copy')).toHaveText(String(totalCodes));
    await wizard.screenshot({ path: path.join(shots, 'mp-failback-preflight.png'), animations: 'disabled' });
    await screenshot(tandem.page, testInfo, 'mp-failback-preflight');

    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByRole('button', { name: 'Next' }).click();
    await expect(wizard.getByTestId('failback-consequence')).toContainText("copies charlie's changes back to alpha, bravo");
    await wizard.getByRole('button', { name: 'Start failback' }).click();
    await expect(wizard.getByTestId('failback-progress')).toBeVisible();
    await expect(wizard.getByRole('button', { name: 'Verify result' })).toBeEnabled({ timeout: 90_000 });
    await wizard.getByRole('button', { name: 'Verify result' }).click();
    await expect(wizard.getByTestId('verify-summary')).toContainText(/\d+ tracks compared, 0 differing, 0 unverified/, { timeout: 90_000 });
    await expect(wizard.getByText('Verified: charlie and alpha, bravo hold the same data')).toBeVisible();
    await expect(wizard.getByTestId('verify-site-alpha')).toHaveText('alpha (1 copy set): 256 tracks compared with charlie, 0 differing');
    await expect(wizard.getByTestId('verify-site-bravo')).toHaveText('bravo (1 copy set): 256 tracks compared with charlie, 0 differing');
    await expect(wizard.getByRole('button', { name: 'Return to alpha, bravo → charlie' })).toBeVisible();
    await wizard.screenshot({ path: path.join(shots, 'mp-failback-result.png'), animations: 'disabled' });
    await wizard.getByRole('button', { name: 'Close' }).click();

    await expect(card.getByTestId('session-direction')).toHaveText('charlie → alpha, bravo');
    await expect(card.getByTestId('pair-row-mp-b')).toContainText('mp-b-copy → mp-b');
    await expect(card.getByTestId('production-site')).toHaveText('Production runs at charlie (the old secondary) since the failback; alpha, bravo receive its writes.');
    await expect(sessions.state(session)).toContainText('Prepared');
    await card.screenshot({ path: path.join(shots, 'mp-card-after-failback.png'), animations: 'disabled' });
    await screenshot(tandem.page, testInfo, 'mp-card-after-failback');
    console.log(`multi-primary screenshots in ${shots}`);

    // What charlie holds is what each primary site holds, byte for byte.
    const uri = (site: 'alpha' | 'bravo' | 'charlie', volume: string) => `nbd://${world.agents[site].nbdAddress}/${volume}`;
    await expect.poll(() => identical(uri('alpha', 'mp-a'), uri('charlie', 'mp-a-copy')), { timeout: 60_000 }).toBe(true);
    await expect.poll(() => identical(uri('bravo', 'mp-b'), uri('charlie', 'mp-b-copy')), { timeout: 60_000 }).toBe(true);
  });
});
