import path from 'node:path';
import { consoleApi } from '../scripts/lib/backend.mjs';
import { ConsolePage } from './pages/console-page.ts';
import { SessionsPage } from './pages/sessions-page.ts';
import { expect, screenshot, test } from './support/fixtures.ts';
import { qemuIo, readExport, sameBytes } from './support/nbd-io.ts';
import { startMirrorWorld, type MirrorWorld } from './support/mirror-world.ts';

const mib = 1024 * 1024;
const session = 'e2e-cdp';

/** Polls `probe` until it returns something truthy, failing after the deadline. */
async function until<T>(what: string, probe: () => Promise<T | false | null | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe().catch(() => null);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

interface JournalAnswer {
  status: { pendingRecords: number; newestPoint: { seq: number } | null };
  images: unknown[];
}

/**
 * Continuous data protection from the console against two real agents: a
 * bookmark taken in the Protection section, an instant image opened at it
 * from there and read over NBD (the bytes of the bookmark, not of the
 * damage written since), access ended; then production recovered to the
 * bookmark with the wizard (the replica rolled back, the journal ended), the
 * failback preflight it ends in, and the failback that brings the primary
 * back to the bookmark's bytes.
 */
test.describe.serial('continuous data protection: bookmark, instant image over NBD, recover production to a bookmark, fail back', () => {
  let world: MirrorWorld;
  let good: string;

  test.beforeAll(async () => {
    test.setTimeout(150_000);
    world = await startMirrorWorld();
    const { primary, secondary } = world.siteIds;
    await consoleApi(world.backend, 'POST', `/api/sites/${primary}/volumes`, { name: 'cdp-db', sizeBytes: 16 * mib });
    await consoleApi(world.backend, 'POST', `/api/sites/${secondary}/volumes`, { name: 'cdp-db-copy', sizeBytes: 16 * mib });
    await consoleApi(world.backend, 'POST', `/api/sites/${primary}/peers`, { otherSiteId: secondary });
    await consoleApi(world.backend, 'POST', `/api/sites/${primary}/sessions`, { name: session, type: 'sync', peer: 'secondary' });
    await consoleApi(world.backend, 'POST', `/api/sites/${primary}/sessions/${session}/pairs`, { h1Volume: 'cdp-db', h2Volume: 'cdp-db-copy' });
    await consoleApi(world.backend, 'POST', `/api/sites/${primary}/sessions/${session}/actions/start`);
    await until('the session prepared', async () => ((await consoleApi(world.backend, 'GET', `/api/sites/${primary}/sessions/${session}`)) as { state: string }).state === 'prepared');
    await consoleApi(world.backend, 'PUT', `/api/sites/${secondary}/sessions/${session}/journal`, { budgetBytes: 256 * mib, requiredWindowSeconds: 3600, bookmarkRetentionSeconds: null });
    // The data worth keeping: 1 MiB at the start, 256 KiB at 8 MiB; saved as the primary holds it.
    await qemuIo(world.primary, 'cdp-db', 'write -P 0xa1 0 1M', 'write -P 0xa2 8M 256k', 'flush');
    good = path.join(world.dir, 'cdp-db-good.raw');
    await readExport(world.primary, 'cdp-db', good);
  });

  test.afterAll(async () => {
    await world?.stop();
  });

  const journal = () => consoleApi(world.backend, 'GET', `/api/sites/${world.siteIds.secondary}/sessions/${session}/journal`) as Promise<JournalAnswer>;

  test('bookmark in the Protection section, open an instant image at it, read it over NBD, end access; recover production to it and fail back', async ({ page }, testInfo) => {
    test.setTimeout(300_000);
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(page);
    await tandem.open();
    await sessions.open();
    const card = sessions.card(session);
    await expect(sessions.state(session)).toContainText('Prepared', { timeout: 30_000 });
    await card.getByRole('button', { name: 'Protection', exact: true }).click();
    await expect(card.getByTestId('journal-window-covered')).toContainText('required');

    // The bookmark, once the secondary has every write of the good data in its journal.
    await until('the good data journaled', async () => (await journal()).status.pendingRecords === 0);
    await card.getByRole('button', { name: 'Bookmark…' }).click();
    const bookmarkModal = page.getByRole('dialog', { name: `Bookmark ${session}` });
    await bookmarkModal.getByTestId('bookmark-name').fill('good');
    await bookmarkModal.getByTestId('bookmark-save').click();
    await expect(bookmarkModal).toBeHidden();
    const row = card.getByTestId('bookmark-good');
    await expect(row).toBeVisible({ timeout: 30_000 });
    const points = (await consoleApi(world.backend, 'GET', `/api/sites/${world.siteIds.secondary}/sessions/${session}/journal/points?every=3600`)) as { points: { seq: number; bookmark: string | null }[] };
    const bookmarkSeq = points.points.find((point) => point.bookmark === 'good')!.seq;

    // The damage: overwrites in both regions and a track empty at the bookmark; journaled at the secondary.
    await qemuIo(world.primary, 'cdp-db', 'write -P 0xdd 0 512k', 'write -P 0xde 8M 256k', 'write -P 0xdf 12M 64k', 'flush');
    await until('the damage journaled', async () => {
      const { status } = await journal();
      return status.pendingRecords === 0 && status.newestPoint !== null && status.newestPoint.seq > bookmarkSeq;
    });

    // An instant image at the bookmark, from its row: its export holds the bookmark's bytes, read over NBD at the secondary.
    await row.getByRole('button', { name: 'Open image…' }).click();
    const imageModal = page.getByRole('dialog', { name: `Open an image of ${session} at good` });
    await imageModal.getByTestId('image-open').click();
    const exportName = (await imageModal.getByTestId('image-export').textContent())!;
    expect(exportName).toMatch(/^image-\d+-cdp-db-copy$/);
    await screenshot(page, testInfo, 'protection-image-open');
    expect(await sameBytes(good, world.secondary, exportName)).toBe(true);
    // The replica itself holds the damage (the image is not the replica).
    expect(await sameBytes(good, world.secondary, 'cdp-db-copy')).toBe(false);
    await imageModal.getByRole('button', { name: 'End access' }).click();
    await until('the image ended', async () => (await journal()).images.length === 0);
    await page.keyboard.press('Escape');
    await expect(imageModal).toBeHidden();
    await expect(card.getByTestId('journal-images')).toBeHidden({ timeout: 30_000 });

    // Recover production to the bookmark with the wizard, from the bookmark's row.
    await row.getByRole('button', { name: 'Recover to here…' }).click();
    const wizard = page.getByRole('dialog', { name: `Recover production of ${session}` });
    await expect(wizard.getByTestId('recover-bookmark')).toHaveValue('good');
    await expect(wizard.getByTestId('timeline-selected')).toHaveAttribute('aria-label', `chosen point ${bookmarkSeq}`);
    await screenshot(page, testInfo, 'recover-wizard-point');
    await wizard.getByTestId('recover-next').click();
    await expect(wizard.getByTestId('recover-consequence')).toContainText('The replica volumes at secondary (cdp-db-copy) are rolled back to that point');
    await expect(wizard.getByTestId('recover-consequence')).toContainText('hosts may write at secondary from now on');
    await expect(wizard.getByTestId('recover-start')).toBeDisabled();
    await wizard.getByTestId('recover-acknowledge').check();
    await screenshot(page, testInfo, 'recover-wizard-confirm');
    await wizard.getByTestId('recover-start').click();

    // It ends in the failback preflight: the rolled-back tracks (8 + 4 + 1) differ from the primary and are copied back.
    await expect(wizard.getByTestId('recover-done')).toContainText('Recovered at bookmark good', { timeout: 60_000 });
    await expect(wizard.getByTestId('preflight-tracks-to-copy')).toContainText('13 tracks to copy (832 KiB)', { timeout: 60_000 });
    await screenshot(page, testInfo, 'recover-wizard-preflight');
    // The replica is the bookmark's image now, and the journal has ended.
    expect(await sameBytes(good, world.secondary, 'cdp-db-copy')).toBe(true);
    await expect(card.getByTestId('protection-none')).toBeVisible({ timeout: 30_000 });
    await expect(sessions.state(session)).toContainText('Target available', { timeout: 30_000 });

    // On to the failback wizard, for this session.
    await wizard.getByTestId('recover-failback').click();
    await expect(wizard).toBeHidden();
    const failback = sessions.failbackWizard;
    await expect(failback.getByRole('button', { name: 'Next' })).toBeEnabled({ timeout: 30_000 });
    await failback.getByRole('button', { name: 'Next' }).click();
    await expect(failback.getByTestId('preflight-tracks-to-copy')).toContainText('13 tracks to copy');
    await failback.getByRole('button', { name: 'Next' }).click();
    await failback.getByRole('button', { name: 'Next' }).click();
    await failback.getByRole('button', { name: 'Start failback' }).click();
    await expect(failback.getByRole('button', { name: 'Verify result' })).toBeEnabled({ timeout: 90_000 });
    // The primary holds the bookmark's bytes again.
    await until('the primary back at the bookmark', async () => sameBytes(good, world.primary, 'cdp-db'));
    await failback.getByRole('button', { name: 'Verify result' }).click();
    await expect(failback.getByTestId('verify-summary')).toContainText(/\d+ tracks compared, 0 differing/, { timeout: 60_000 });
    await screenshot(page, testInfo, 'recover-failback-verified');
  });
});
