import type { Locator, Page } from '@playwright/test';

/** A site's volumes table, its dialogs, and the track map of the selected volume. */
export class VolumesPage {
  constructor(private readonly page: Page) {}

  row(name: string): Locator {
    return this.page.getByTestId(`volume-row-${name}`);
  }

  async create(name: string, size: string): Promise<void> {
    await this.page.getByRole('button', { name: 'Create volume' }).click();
    const dialog = this.page.getByRole('dialog', { name: 'Create a volume' });
    await dialog.getByLabel('Name').fill(name);
    await dialog.getByLabel('Size').fill(size);
    await dialog.getByRole('button', { name: 'Create' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await this.row(name).waitFor();
  }

  private async action(volume: string, item: string): Promise<void> {
    await this.page.getByRole('button', { name: `Actions for ${volume}` }).click();
    await this.page.getByRole('menuitem', { name: item }).click();
  }

  async snapshot(volume: string, name: string): Promise<void> {
    await this.action(volume, 'Take snapshot');
    const dialog = this.page.getByRole('dialog', { name: `Snapshot ${volume}` });
    await dialog.getByLabel('Snapshot name').fill(name);
    await dialog.getByRole('button', { name: 'Take snapshot' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await this.row(name).waitFor();
  }

  async resize(volume: string, size: string): Promise<void> {
    await this.action(volume, 'Resize');
    const dialog = this.page.getByRole('dialog', { name: `Resize ${volume}` });
    await dialog.getByLabel('New size').fill(size);
    await dialog.getByRole('button', { name: 'Resize' }).click();
    await dialog.waitFor({ state: 'hidden' });
  }

  async delete(volume: string): Promise<Locator> {
    await this.action(volume, 'Delete');
    return this.page.getByRole('dialog', { name: new RegExp(`^Delete (volume|snapshot) ${volume.replace(/\./g, '\\.')}\\?$`) });
  }

  async openTrackMap(volume: string): Promise<void> {
    await this.page.getByRole('button', { name: `Show track map of ${volume}` }).click();
    await this.page.getByRole('heading', { name: `Track map of ${volume}` }).waitFor();
  }

  get trackMap(): Locator {
    return this.page.getByTestId('track-map');
  }

  get totals(): Locator {
    return this.page.getByTestId('track-map-totals');
  }

  async refreshTrackMap(): Promise<void> {
    await this.trackMap.getByRole('button', { name: 'Refresh' }).click();
  }
}
