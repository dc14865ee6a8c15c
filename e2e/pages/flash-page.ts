import type { Locator, Page } from '@playwright/test';

/** Flash copy as a user meets it: the wizard (from a volume's menu or the Sessions screen), the live copy, session cards and their confirmations. */
export class FlashPage {
  constructor(private readonly page: Page) {}

  get wizard(): Locator {
    return this.page.getByRole('dialog', { name: 'Flash copy' });
  }

  /** Opens the wizard from a volume's action menu: the volume is the source. */
  async openFromVolume(volume: string): Promise<void> {
    await this.page.getByRole('button', { name: `Actions for ${volume}`, exact: true }).click();
    await this.page.getByRole('menuitem', { name: 'Flash copy…' }).click();
    await this.wizard.waitFor();
  }

  get targetSelect(): Locator {
    return this.wizard.getByLabel('Target volume');
  }

  /** The values the target list offers (the placeholder left out). */
  async offeredTargets(): Promise<string[]> {
    const values = await this.targetSelect.locator('option').evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value));
    return values.filter(Boolean);
  }

  async next(): Promise<void> {
    await this.wizard.getByRole('button', { name: 'Next' }).click();
  }

  async setOptions(options: { name?: string; rateMiBps?: number; incremental?: boolean }): Promise<void> {
    if (options.name) await this.wizard.getByLabel(/^Session name/).fill(options.name);
    if (options.rateMiBps !== undefined) {
      await this.wizard.getByLabel('Limited, to spare host I/O').check();
      await this.wizard.getByLabel('Rate (MiB/s)').fill(String(options.rateMiBps));
    }
    if (options.incremental) await this.wizard.getByLabel(/^Incremental/).check();
  }

  get progress(): Locator {
    return this.wizard.getByTestId('flash-progress');
  }

  card(name: string): Locator {
    return this.page.getByTestId(`flash-card-${name}`);
  }

  /** Clicks an action of a flash session (on a card or in the wizard) and returns its confirmation dialog. */
  async action(scope: Locator, label: string): Promise<Locator> {
    await scope.getByRole('button', { name: `${label}…`, exact: true }).click();
    return this.page.getByRole('dialog').filter({ has: this.page.getByTestId('flash-action-consequence') });
  }

  /** Acknowledges (when asked) and confirms an action dialog. */
  async confirm(dialog: Locator, label: string): Promise<void> {
    const acknowledge = dialog.getByLabel('I understand which volumes this overwrites or ends');
    if (await acknowledge.count()) await acknowledge.check();
    await dialog.getByRole('button', { name: label, exact: true }).click();
    await dialog.waitFor({ state: 'hidden' });
  }
}
