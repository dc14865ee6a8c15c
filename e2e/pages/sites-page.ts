import type { Locator, Page } from '@playwright/test';

/** The sites overview and the "Connect to a site" wizard. */
export class SitesPage {
  constructor(private readonly page: Page) {}

  get emptyState(): Locator {
    return this.page.getByTestId('sites-empty');
  }

  card(site: string): Locator {
    return this.page.getByTestId(`site-card-${site}`);
  }

  /** The link between two sites on the overview (names in either order). */
  link(a: string, b: string): Locator {
    const [first, second] = [a, b].sort((x, y) => x.localeCompare(y));
    return this.page.getByTestId(`site-link-${first}-${second}`);
  }

  /** A session's row on a link: its direction, mode and state by test id. */
  linkSession(a: string, b: string, session: string): Locator {
    return this.link(a, b).getByTestId(`link-session-${session}`);
  }

  get wizard(): Locator {
    return this.page.getByRole('dialog', { name: 'Connect to a site' });
  }

  async startWizard(address: string, token: string): Promise<void> {
    await this.page.getByRole('button', { name: 'Connect to a site' }).first().click();
    await this.wizard.getByLabel('Agent address').fill(address);
    await this.wizard.getByLabel('Pairing token').fill(token);
    await this.wizard.getByRole('button', { name: 'Next' }).click();
  }

  get probedSite(): Locator {
    return this.wizard.getByTestId('probe-site');
  }

  get probedFingerprint(): Locator {
    return this.wizard.getByTestId('probe-fingerprint');
  }

  async confirm(expectedFingerprint?: string): Promise<void> {
    if (expectedFingerprint !== undefined) await this.wizard.getByLabel('Expected fingerprint (optional)').fill(expectedFingerprint);
    await this.wizard.getByRole('button', { name: 'Trust and connect' }).click();
  }

  get problem(): Locator {
    return this.wizard.getByTestId('problem');
  }

  async finish(): Promise<void> {
    await this.wizard.getByTestId('connect-done').waitFor();
    await this.wizard.getByRole('button', { name: 'Done' }).click();
  }

  async cancel(): Promise<void> {
    await this.page.keyboard.press('Escape');
    await this.wizard.waitFor({ state: 'hidden' });
  }
}
