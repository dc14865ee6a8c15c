import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, screenshot, test } from './support/fixtures.ts';

const execFileAsync = promisify(execFile);

/** Writes through the agent's NBD export with qemu-io, as an application host would. */
async function qemuIo(nbdAddress: string, volume: string, command: string): Promise<void> {
  await execFileAsync('qemu-io', ['-f', 'raw', '-c', command, `nbd://${nbdAddress}/${volume}`], { timeout: 60_000 });
}

test.describe.serial('volumes, snapshots and the track map', () => {
  test.beforeAll(async ({ tandem }) => {
    await tandem.ensurePaired(tandem.primary);
  });

  test('create a volume, write through NBD, snapshot, write again: the map shows shared and exclusive tracks', async ({ console: tandem, tandem: world }, testInfo) => {
    await tandem.open();
    await tandem.openSite('primary');
    await expect(tandem.page.getByTestId('volumes-empty')).toBeVisible();
    await screenshot(tandem.page, testInfo, 'volumes-empty');

    // 64 MiB = 1024 tracks of 64 KiB.
    await tandem.volumes.create('e2e-vol', '64M');
    await expect(tandem.volumes.row('e2e-vol')).toContainText('64 MiB');

    // 16 tracks written, then a snapshot shares all of them, then 4 of them are overwritten.
    await qemuIo(world.primary.nbdAddress, 'e2e-vol', 'write -P 0xaa 0 1M');
    await tandem.volumes.snapshot('e2e-vol', 'e2e-snap');
    await expect(tandem.volumes.row('e2e-snap')).toContainText('snapshot of e2e-vol');
    await qemuIo(world.primary.nbdAddress, 'e2e-vol', 'write -P 0xbb 0 256k');

    await tandem.volumes.openTrackMap('e2e-vol');
    await tandem.volumes.refreshTrackMap();
    await expect(tandem.volumes.totals).toHaveAttribute('data-allocated', '16');
    await expect(tandem.volumes.totals).toHaveAttribute('data-exclusive', '4');
    await expect(tandem.volumes.totals).toHaveAttribute('data-shared', '12');
    await expect(tandem.volumes.trackMap.getByTestId('track-map-canvas')).toBeVisible();

    // Hovering the first track tells what it is.
    const canvas = tandem.volumes.trackMap.getByTestId('track-map-canvas');
    const box = (await canvas.boundingBox())!;
    await tandem.page.mouse.move(box.x + 2, box.y + 2);
    await expect(tandem.page.getByTestId('track-hover')).toContainText('Track 0: exclusive');
    await tandem.page.mouse.move(box.x + (box.width / 128) * 5 + 2, box.y + 2);
    await expect(tandem.page.getByTestId('track-hover')).toContainText('shared with e2e-snap');
    await screenshot(tandem.page, testInfo, 'track-map-volume');

    await tandem.volumes.openTrackMap('e2e-snap');
    await expect(tandem.page.getByTestId('lineage')).toHaveText('snapshot of e2e-vol');
    await expect(tandem.volumes.totals).toHaveAttribute('data-allocated', '16');
    await expect(tandem.volumes.totals).toHaveAttribute('data-exclusive', '4');
    await expect(tandem.volumes.totals).toHaveAttribute('data-shared', '12');
    await screenshot(tandem.page, testInfo, 'track-map-snapshot');
  });

  test('the track map zooms into a region', async ({ console: tandem }) => {
    await tandem.open();
    await tandem.openSite('primary');
    await tandem.volumes.openTrackMap('e2e-vol');
    await expect(tandem.page.getByTestId('track-map-view')).toContainText('Tracks 0–1,023');
    await tandem.volumes.trackMap.getByRole('button', { name: 'Zoom in' }).click();
    await expect(tandem.page.getByTestId('track-map-view')).toContainText('Tracks 256–767');
    await tandem.volumes.trackMap.getByRole('button', { name: 'Whole volume' }).click();
    await expect(tandem.page.getByTestId('track-map-view')).toContainText('Tracks 0–1,023');
  });

  test('resize, refused input, and delete with the name typed', async ({ console: tandem }, testInfo) => {
    await tandem.open();
    await tandem.openSite('primary');
    await tandem.volumes.resize('e2e-vol', '128M');
    await expect(tandem.volumes.row('e2e-vol')).toContainText('128 MiB');

    await tandem.volumes.create('scratch', '16M');
    await tandem.page.getByRole('button', { name: 'Create volume' }).click();
    const dialog = tandem.page.getByRole('dialog', { name: 'Create a volume' });
    await dialog.getByLabel('Name').fill('scratch');
    await dialog.getByLabel('Size').fill('16M');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await expect(dialog.getByTestId('problem')).toContainText('already-exists');
    await screenshot(tandem.page, testInfo, 'create-refused');
    await tandem.page.keyboard.press('Escape');

    const confirm = await tandem.volumes.delete('scratch');
    const deleteButton = confirm.getByRole('button', { name: 'Delete scratch' });
    await expect(deleteButton).toBeDisabled();
    await confirm.getByLabel('Name').fill('scratch');
    await deleteButton.click();
    await expect(tandem.volumes.row('scratch')).toHaveCount(0);
  });

  test("the site's audit trail names the console's calls, the CLI's and a refused one, and filters by session", async ({ console: tandem, tandem: world }, testInfo) => {
    await world.agentCli(world.primary, 'volume', 'create', 'audit-cli', '8M');
    await tandem.open();
    await tandem.openSite('primary');
    await tandem.page.getByRole('button', { name: 'Audit trail' }).click();
    const view = tandem.page.getByTestId('audit-view');
    const table = view.getByTestId('audit-table');
    // The console created e2e-vol above: its certificate and the OS user running it; the CLI's call: the local admin.
    await expect(table.getByRole('row').filter({ hasText: 'volume e2e-vol' }).filter({ hasText: 'POST /v1/volumes' }).first()).toContainText('201');
    await expect(table.getByRole('row').filter({ hasText: 'volume audit-cli' })).toContainText('local-admin primary');
    await expect(table.getByRole('row').filter({ hasText: 'volume audit-cli' })).toContainText('201');
    // The refused create of an existing name (the test before): its problem code.
    await expect(table.getByRole('row').filter({ hasText: '409 already-exists' }).first()).toContainText('volume scratch');
    await screenshot(tandem.page, testInfo, 'audit-trail');
    // A session name no call named: nothing.
    await view.getByLabel('Filter by session').fill('no-such-session');
    await expect(view.getByTestId('audit-empty')).toHaveText('No calls about session no-such-session.');
  });

  test('a change made elsewhere shows up live (agent event, no reload)', async ({ console: tandem, tandem: world }, testInfo) => {
    await tandem.open();
    await tandem.openSite('primary');
    await world.agentCli(world.primary, 'volume', 'create', 'from-cli', '8M');
    await expect(tandem.volumes.row('from-cli')).toBeVisible();
    await tandem.toggleTheme();
    await screenshot(tandem.page, testInfo, 'volumes-dark');
  });
});

test('a 1 TiB volume (16M tracks) opens its track map at once, summarised per region', async ({ console: tandem, tandem: world }, testInfo) => {
  await world.ensurePaired(world.primary);
  await world.agentCli(world.primary, 'volume', 'create', 'huge', '1T');
  await tandem.open();
  await tandem.openSite('primary');
  const started = Date.now();
  await tandem.volumes.openTrackMap('huge');
  await expect(tandem.volumes.totals).toHaveAttribute('data-allocated', '0');
  expect(Date.now() - started).toBeLessThan(10_000);
  await expect(tandem.page.getByTestId('track-map-view')).toContainText('2,048 tracks per cell');
  await tandem.volumes.trackMap.getByRole('button', { name: 'Zoom in' }).click();
  await expect(tandem.page.getByTestId('track-map-view')).toContainText('1,024 tracks per cell');
  await screenshot(tandem.page, testInfo, 'track-map-1tib');
});
