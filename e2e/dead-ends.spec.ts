import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Page } from '@playwright/test';
import { consoleApi } from '../scripts/lib/backend.mjs';
import { ConsolePage } from './pages/console-page.ts';
import { FlashPage } from './pages/flash-page.ts';
import { SessionsPage } from './pages/sessions-page.ts';
import { expect, screenshot, test } from './support/fixtures.ts';
import { startMirrorWorld, type MirrorWorld } from './support/mirror-world.ts';

const execFileAsync = promisify(execFile);
const mib = 1024 * 1024;
const app = 'e2e-app';
const ledger = 'e2e-ledger';
const books = 'e2e-books';

/** Nothing sticks out sideways: the page is no wider than the window. */
async function fitsWidth(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
}

/**
 * The console's dead ends, closed, with real agents: a session whose copy
 * volume the wizard creates at the H2 site, Verify on its card; a cluster
 * created with a member, another session joining it and one leaving; the
 * flash wizard creating its own target; mirror roles in the volume table;
 * a URL per screen that survives a reload; every screen at 1024 px.
 */
test.describe.serial('dead ends closed: create what is missing from the wizards, verify, clusters, URLs, 1024 px', () => {
  let world: MirrorWorld;

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    world = await startMirrorWorld();
    const ids = world.siteIds;
    await consoleApi(world.backend, 'POST', `/api/sites/${ids.primary}/peers`, { otherSiteId: ids.secondary });
    await consoleApi(world.backend, 'POST', `/api/sites/${ids.primary}/volumes`, { name: 'app-db', sizeBytes: 16 * mib });
    await consoleApi(world.backend, 'POST', `/api/sites/${ids.primary}/volumes`, { name: 'app-log', sizeBytes: 16 * mib });
    await consoleApi(world.backend, 'POST', `/api/sites/${ids.secondary}/volumes`, { name: 'app-log-copy', sizeBytes: 16 * mib });
    await execFileAsync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x61 0 2M', `nbd://${world.primary.nbdAddress}/app-db`], { timeout: 60_000 });
  });

  test.afterAll(async () => {
    await world?.stop();
  });

  test('a session whose copy the wizard creates at the H2 site, started and verified from its card', async ({ page }, testInfo) => {
    test.setTimeout(180_000);
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(page);
    await tandem.open();
    await sessions.open();
    await page.getByRole('button', { name: 'Create session…' }).click();
    const wizard = sessions.createWizard;
    await wizard.getByLabel('Session name').fill(app);
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByLabel('H1 site (source)').selectOption({ label: `primary (${world.primary.apiAddress})` });
    await wizard.getByLabel('H2 site (target)').selectOption({ label: `secondary (${world.secondary.apiAddress})` });
    await wizard.getByTestId('sites-paired').waitFor();
    await expect(wizard.getByRole('button', { name: 'Cancel' })).toBeVisible();
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByLabel('Volume at primary').selectOption('app-db');
    await wizard.getByRole('button', { name: 'Create a volume of 16 MiB at secondary…' }).click();
    await expect(wizard.getByLabel('New volume name')).toHaveValue('app-db-copy');
    await screenshot(page, testInfo, 'dead-ends-create-copy-volume');
    await wizard.getByRole('button', { name: 'Create app-db-copy' }).click();
    await expect(wizard.getByLabel('Copy at secondary')).toHaveValue('app-db-copy');
    await wizard.getByRole('button', { name: 'Add copy set' }).click();
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByRole('button', { name: 'Create session' }).click();
    await wizard.waitFor({ state: 'hidden' });

    const start = await sessions.action(app, 'Start');
    await start.getByRole('button', { name: 'Start' }).click();
    await expect(sessions.state(app)).toContainText('Prepared', { timeout: 90_000 });
    const verify = await sessions.verify(app);
    await expect(verify.getByTestId('verify-summary')).toContainText(/256 tracks compared, 0 differing/);
    await screenshot(page, testInfo, 'dead-ends-verify');
    await verify.getByRole('button', { name: 'Close', exact: true }).click();
    await expect(sessions.card(app).getByTestId('last-verify')).toContainText('Verified on request');
  });

  test('clusters: created with a member, another session joins, one leaves', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    await consoleApi(world.backend, 'POST', `/api/sites/${world.siteIds.primary}/sessions`, { name: ledger, type: 'async', peer: 'secondary' });
    await consoleApi(world.backend, 'POST', `/api/sites/${world.siteIds.primary}/sessions/${ledger}/pairs`, { h1Volume: 'app-log', h2Volume: 'app-log-copy' });
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(page);
    await tandem.open();
    await sessions.open();
    await sessions.card(ledger).waitFor();
    await sessions.createCluster(books, `primary (${world.primary.apiAddress})`, [`${app} (primary → secondary)`]);
    await expect(sessions.cluster(books)).toContainText('1 member');
    await expect(sessions.card(app).getByTestId('session-cluster')).toHaveText(`cluster ${books}`);

    await sessions.joinCluster(ledger, books, 'primary');
    await expect(sessions.cluster(books)).toContainText('2 members');
    await expect(sessions.card(ledger).getByTestId('session-cluster')).toHaveText(`cluster ${books}`);
    await screenshot(page, testInfo, 'dead-ends-cluster-joined');

    await sessions.leaveCluster(ledger, books);
    await expect(sessions.cluster(books)).toContainText('1 member');
    await expect(sessions.card(ledger).getByTestId('session-cluster')).toBeHidden();
  });

  test('the flash wizard creates its target at the source site; the volume table shows mirror roles', async ({ page }, testInfo) => {
    const tandem = new ConsolePage(page, world.backend);
    const flash = new FlashPage(page);
    await tandem.open();
    await tandem.openSite('primary');
    await expect(tandem.volumes.row('app-db').getByTestId('mirror-role-h1')).toHaveText(`H1 of ${app} → secondary`);
    await expect(tandem.volumes.row('app-log').getByTestId('mirror-role-h1')).toHaveText(`H1 of ${ledger} → secondary`);
    await flash.openFromVolume('app-log');
    await expect(flash.wizard).toContainText('Targets for app-log at primary');
    await flash.wizard.getByRole('button', { name: 'Create a volume of 16 MiB at primary…' }).click();
    await flash.wizard.getByRole('button', { name: 'Create app-log-pit' }).click();
    await expect(flash.targetSelect).toHaveValue('app-log-pit');
    await expect(flash.wizard.getByTestId('flash-target-warning')).toContainText('app-log-pit');
    await screenshot(page, testInfo, 'dead-ends-flash-target-created');
    await flash.wizard.getByRole('button', { name: 'Cancel' }).click();
    await expect(flash.wizard).toBeHidden();
    await expect(tandem.volumes.row('app-log-pit')).toBeVisible();
    await tandem.openSite('secondary');
    await expect(tandem.volumes.row('app-db-copy').getByTestId('mirror-role-h2')).toHaveText(`H2 of ${app} ← primary`);
  });

  test('every screen has its URL, kept by a reload; at 1024 px nothing spills sideways', async ({ page }, testInfo) => {
    test.setTimeout(120_000);
    await page.setViewportSize({ width: 1024, height: 768 });
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(page);
    await tandem.open();
    await expect(page.getByRole('heading', { name: 'Sites', exact: false }).first()).toBeVisible();
    expect(await fitsWidth(page)).toBe(true);
    await screenshot(page, testInfo, 'dead-ends-1024-overview');

    await sessions.open();
    await expect(page).toHaveURL(/#\/sessions$/);
    await sessions.card(app).waitFor();
    await page.reload();
    await expect(page.getByRole('heading', { name: 'Sessions', level: 2 })).toBeVisible();
    await expect(sessions.state(app)).toContainText('Prepared');
    expect(await fitsWidth(page)).toBe(true);
    await screenshot(page, testInfo, 'dead-ends-1024-sessions');

    await tandem.openSite('primary');
    await tandem.volumes.openTrackMap('app-db');
    await expect(page).toHaveURL(new RegExp(`#/sites/${world.siteIds.primary}/volumes/app-db$`));
    await page.reload();
    await expect(page.getByRole('heading', { name: 'Track map of app-db' })).toBeVisible();
    expect(await fitsWidth(page)).toBe(true);
    await screenshot(page, testInfo, 'dead-ends-1024-volumes');
    // Back goes to the screen before.
    await page.goBack();
    await expect(page.getByRole('heading', { name: 'Volumes at primary' })).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Track map of app-db' })).toBeHidden();
  });
});
