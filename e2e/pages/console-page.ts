import type { Page } from '@playwright/test';
import { SitesPage } from './sites-page.ts';
import { VolumesPage } from './volumes-page.ts';

/** The console as a user sees it: open it, pick a site, reach its pages. */
export class ConsolePage {
  readonly sites: SitesPage;
  readonly volumes: VolumesPage;

  constructor(
    readonly page: Page,
    private readonly backend: { browserUrl: string },
  ) {
    this.sites = new SitesPage(page);
    this.volumes = new VolumesPage(page);
  }

  async open(): Promise<void> {
    await this.page.goto(this.backend.browserUrl);
    await this.page.getByRole('heading', { name: 'Tandem' }).waitFor();
  }

  async openSite(site: string): Promise<void> {
    await this.page.getByRole('navigation').getByText(site, { exact: true }).click();
    await this.page.getByRole('heading', { name: `Volumes at ${site}` }).waitFor();
  }

  async toggleTheme(): Promise<void> {
    await this.page.getByRole('button', { name: 'Toggle colour theme' }).click();
  }
}
