import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { initAgent, pairingToken, startAgent, type RunningAgent } from '../scripts/lib/agents.mjs';
import { consoleApi, startConsoleBackend, type RunningConsoleBackend } from '../scripts/lib/backend.mjs';
import { ConsolePage } from './pages/console-page.ts';
import { FlashPage } from './pages/flash-page.ts';
import { SessionsPage } from './pages/sessions-page.ts';
import { expect, screenshot, test } from './support/fixtures.ts';
import { qemuIo, readExport, sameBytes } from './support/nbd-io.ts';

const mib = 1024 * 1024;


const session = 'e2e-flash';

/**
 * Flash copy from the console against a real agent: a volume written over
 * NBD is flashed onto another through the wizard with a background copy,
 * written again at once (copy-on-write), and the target ends up with
 * exactly the source's point-in-time bytes. The spec has its own agent:
 * flash sessions and volumes would surprise the shared world's specs.
 */
test.describe.serial('flash copy: wizard, background copy, point-in-time bytes, reverse and withdraw', () => {
  let dir: string;
  let agent: RunningAgent;
  let backend: RunningConsoleBackend;
  let pointInTime: string;

  test.beforeAll(async () => {
    test.setTimeout(120_000);
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-e2e-flash-'));
    await initAgent({ dataDir: path.join(dir, 'agent'), site: 'primary' });
    agent = await startAgent({ dataDir: path.join(dir, 'agent') });
    backend = await startConsoleBackend({ configDir: path.join(dir, 'console') });
    const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
    const { id: siteId } = (await consoleApi(backend, 'POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint })) as { id: string };
    // 64 MiB = 1024 tracks of 64 KiB; a volume of another size must not be offered as the target.
    for (const [name, size] of [
      ['fc-db', 64 * mib],
      ['fc-db-pit', 64 * mib],
      ['fc-small', 32 * mib],
      ['fc-log', 16 * mib],
      ['fc-log-pit', 16 * mib],
    ] as const) {
      await consoleApi(backend, 'POST', `/api/sites/${siteId}/volumes`, { name, sizeBytes: size });
    }
    // 20 MiB of source data in three regions, and old data on the target that the flash copy must replace.
    await qemuIo(agent, 'fc-db', 'write -P 0xaa 0 8M', 'write -P 0x5c 40M 11M', 'write -P 0x11 63M 1M', 'flush');
    await qemuIo(agent, 'fc-db-pit', 'write -P 0xee 0 16M', 'flush');
    await qemuIo(agent, 'fc-log', 'write -P 0x21 0 4M', 'flush');
    pointInTime = path.join(dir, 'fc-db-point-in-time.raw');
    await readExport(agent, 'fc-db', pointInTime);
  });

  test.afterAll(async () => {
    await backend?.stop();
    await agent?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the wizard flashes fc-db onto fc-db-pit with a background copy; the copy reaches 100 % and the target holds the point-in-time bytes', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const tandem = new ConsolePage(page, backend);
    const flash = new FlashPage(page);
    await tandem.open();
    await tandem.openSite('primary');
    await flash.openFromVolume('fc-db');

    // Started from the volume: the source is chosen; only a compatible target is offered.
    await expect(flash.targetSelect).toBeVisible();
    expect(await flash.offeredTargets()).toEqual(['fc-db-pit']);
    await expect(flash.wizard.getByTestId('flash-target-refused')).toContainText('fc-small (32 MiB, not 64 MiB)');
    await flash.targetSelect.selectOption('fc-db-pit');
    const warning = flash.wizard.getByTestId('flash-target-warning');
    await expect(warning).toContainText('The data on fc-db-pit will be replaced');
    await expect(warning).toContainText('fc-db-pit holds 16 MiB of data now; it will be gone.');
    await screenshot(page, testInfo, 'flash-wizard-target');

    await flash.next();
    // A slow background copy (2 MiB/s for 20 MiB of data, about 10 s) so the copy is seen running, and the source's last region is still uncopied when it is written.
    await flash.setOptions({ name: session, rateMiBps: 2 });
    await screenshot(page, testInfo, 'flash-wizard-options');
    await flash.next();
    await expect(flash.wizard.getByTestId('flash-review')).toContainText(`Flash copy ${session} at primary, 1 pair at one point in time`);
    await expect(flash.wizard.getByTestId('flash-review')).toContainText('Background copy at up to 2 MiB/s');
    await expect(flash.wizard.getByTestId('flash-review-warning')).toContainText('Replaces all data on fc-db-pit');
    await screenshot(page, testInfo, 'flash-wizard-review');
    await flash.wizard.getByRole('button', { name: 'Establish flash copy' }).click();

    // Usable at once: while the copy runs, new writes at the source must not reach the target (copy-on-write).
    await expect(flash.progress).toBeVisible();
    await qemuIo(agent, 'fc-db', 'write -P 0x77 0 1M', 'write -P 0x77 63M 1M', 'flush');
    await expect(flash.progress.getByTestId('flash-state')).toHaveText('Copying');
    await expect(flash.progress.getByTestId('flash-rate')).toContainText(/[\d.]+ (KiB|MiB)\/s/, { timeout: 30_000 });
    await expect(flash.progress.getByTestId('flash-eta')).toContainText(/\d+(\.\d)? s|min/);
    await screenshot(page, testInfo, 'flash-progress-copying');

    await expect(flash.progress.getByTestId('flash-percent')).toHaveText('100 %', { timeout: 90_000 });
    await expect(flash.progress.getByTestId('flash-state')).toHaveText('Idle / copied');
    await expect(flash.progress.getByTestId('flash-eta')).toHaveText('done');
    await expect(flash.progress.getByTestId('flash-pair-fc-db-pit')).toContainText('100 % · 1,024 / 1,024 tracks');
    await expect(flash.progress.getByTestId('flash-track-totals')).toHaveAttribute('data-copied', '1024');
    await expect(flash.progress.getByTestId('flash-track-totals')).toHaveAttribute('data-not-copied', '0');
    await screenshot(page, testInfo, 'flash-progress-done');

    // The bytes: the target is the source as it was at establish; the source has moved on.
    expect(await sameBytes(pointInTime, agent, 'fc-db-pit')).toBe(true);
    expect(await sameBytes(pointInTime, agent, 'fc-db')).toBe(false);

    // The volume screen shows the relationship on both volumes.
    await flash.wizard.getByRole('button', { name: 'Close' }).click();
    await expect(tandem.volumes.row('fc-db').getByTestId('flash-role-source')).toHaveText('flash source → fc-db-pit');
    await expect(tandem.volumes.row('fc-db-pit').getByTestId('flash-role-target')).toHaveText('flash target ← fc-db');
    await tandem.volumes.openTrackMap('fc-db-pit');
    await expect(page.getByTestId('volume-flash')).toContainText('fc-db-pit is the target of fc-db');
    await expect(page.getByTestId('volume-flash').getByTestId('flash-track-totals')).toHaveAttribute('data-copied', '1024');
    // No tooltip of a hovered badge over the picture.
    await page.mouse.move(1, 790);
    await screenshot(page, testInfo, 'flash-volume-target');
  });

  test('on the Sessions screen: reverse restore puts the point-in-time image back on fc-db; withdraw and forget end the relationship', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const tandem = new ConsolePage(page, backend);
    const flash = new FlashPage(page);
    const sessions = new SessionsPage(page);
    await tandem.open();
    await sessions.open();
    const card = flash.card(session);
    await expect(card.getByTestId('flash-state')).toHaveText('Idle / copied');
    await expect(card).toContainText('at primary');

    const reverse = await flash.action(card, 'Reverse restore');
    await expect(reverse.getByTestId('flash-action-consequence')).toContainText('Reverse restore overwrites source fc-db with the point-in-time image in fc-db-pit');
    await expect(reverse.getByRole('button', { name: 'Reverse restore', exact: true })).toBeDisabled();
    await screenshot(page, testInfo, 'flash-reverse-confirm');
    await flash.confirm(reverse, 'Reverse restore');
    // The restored source reads the image at once (the copy back may still run underneath).
    await expect.poll(() => sameBytes(pointInTime, agent, 'fc-db'), { timeout: 60_000 }).toBe(true);
    await expect(card.getByTestId('flash-state')).toHaveText(/Copying|Idle \/ copied/);

    const withdraw = await flash.action(card, 'Withdraw');
    await expect(withdraw.getByTestId('flash-action-consequence')).toContainText('Withdraw ends the relationship fc-db → fc-db-pit');
    await flash.confirm(withdraw, 'Withdraw');
    await expect(card.getByTestId('flash-withdrawn')).toBeVisible({ timeout: 60_000 });
    // The session's events, as the agent recorded them, shown on the card (and refreshed by the same events).
    await card.getByRole('button', { name: 'Show events' }).click();
    const events = card.getByTestId(`flash-events-${session}`);
    for (const type of ['flash.established', 'flash.reversed', 'flash.withdrawn']) await expect(events).toContainText(type);
    await expect(events).not.toContainText('flash.copy-progress');
    await screenshot(page, testInfo, 'flash-withdrawn');
    expect(await sameBytes(pointInTime, agent, 'fc-db-pit')).toBe(true);

    const forget = await flash.action(card, 'Forget');
    await flash.confirm(forget, 'Forget');
    await expect(card).toHaveCount(0);
    await expect(page.getByTestId('flash-empty')).toBeVisible();
  });

  test('from the Sessions screen: an incremental no-copy flash copy, then a refresh takes a new point in time of only the changed tracks', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const tandem = new ConsolePage(page, backend);
    const flash = new FlashPage(page);
    const sessions = new SessionsPage(page);
    const incremental = 'e2e-incremental';
    const firstImage = path.join(dir, 'fc-log-1.raw');
    await readExport(agent, 'fc-log', firstImage);
    await tandem.open();
    await sessions.open();
    await page.getByRole('button', { name: 'Flash copy…' }).click();
    await flash.wizard.getByLabel(/^Source volume/).selectOption('fc-log');
    await screenshot(page, testInfo, 'flash-wizard-source');
    await flash.next();
    expect(await flash.offeredTargets()).toEqual(['fc-log-pit']);
    await flash.targetSelect.selectOption('fc-log-pit');
    await flash.next();
    await flash.setOptions({ name: incremental, incremental: true });
    await flash.wizard.getByLabel(/^Background copy: copy every track/).uncheck();
    await flash.next();
    await expect(flash.wizard.getByTestId('flash-review')).toContainText('No-copy: only tracks overwritten at the source are copied; incremental');
    await flash.wizard.getByRole('button', { name: 'Establish flash copy' }).click();
    await expect(flash.progress.getByTestId('flash-state')).toHaveText('Copying');
    await flash.wizard.getByRole('button', { name: 'Close' }).click();
    expect(await sameBytes(firstImage, agent, 'fc-log-pit')).toBe(true);

    // Two tracks change at the source; the card counts them (no event: the list refreshes while the screen is open).
    await qemuIo(agent, 'fc-log', 'write -P 0x42 1M 128k', 'flush');
    const card = flash.card(incremental);
    await expect(card.getByTestId('flash-pair-changed')).toHaveText('2 / 0', { timeout: 30_000 });
    expect(await sameBytes(firstImage, agent, 'fc-log-pit')).toBe(true);
    await screenshot(page, testInfo, 'flash-incremental-changed');

    const refresh = await flash.action(card, 'Refresh');
    await expect(refresh.getByTestId('flash-action-consequence')).toContainText('Refresh overwrites target fc-log-pit with a new point-in-time image of fc-log, taken now.');
    await expect(refresh.getByTestId('flash-action-consequence')).toContainText('about 2 tracks');
    await flash.confirm(refresh, 'Refresh');
    await expect(card.getByTestId('flash-pair-changed')).toHaveText('0 / 0');
    const secondImage = path.join(dir, 'fc-log-2.raw');
    await readExport(agent, 'fc-log', secondImage);
    expect(await sameBytes(secondImage, agent, 'fc-log-pit')).toBe(true);
    expect(await sameBytes(firstImage, agent, 'fc-log-pit')).toBe(false);
    await card.getByRole('button', { name: 'Show events' }).click();
    await expect(card.getByTestId(`flash-events-${incremental}`)).toContainText('flash.refreshed');
    await tandem.toggleTheme();
    await page.mouse.move(1, 790);
    await screenshot(page, testInfo, 'flash-incremental-refreshed-dark');
  });
});
