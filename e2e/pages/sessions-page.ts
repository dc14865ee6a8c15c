import type { Download, Locator, Page } from '@playwright/test';

/** The Sessions screen: session cards, their actions and reports, and the create-session and failback wizards. */
export class SessionsPage {
  constructor(private readonly page: Page) {}

  async open(): Promise<void> {
    await this.page.getByRole('navigation').getByText('Sessions', { exact: true }).click();
    await this.page.getByRole('heading', { name: 'Sessions', level: 2 }).waitFor();
  }

  card(name: string): Locator {
    return this.page.getByTestId(`session-card-${name}`);
  }

  state(name: string): Locator {
    return this.card(name).getByTestId('session-state');
  }

  get createWizard(): Locator {
    return this.page.getByRole('dialog', { name: 'Create a session' });
  }

  get failbackWizard(): Locator {
    return this.page.getByRole('dialog', { name: 'Failback' });
  }

  /** Walks the create-session wizard; pairs the two sites on the way if they are not paired yet. */
  /** A copy set's third element names its primary site (async sessions; default the H1 site). */
  async create(options: {
    name: string;
    type?: 'Sync' | 'Semi-sync' | 'Async' | 'Snapshot shipping';
    h1Site: string;
    h1Address: string;
    h2Site: string;
    h2Address: string;
    copySets: ([string, string] | [string, string, string])[];
    /** Checked on the review step before creating. */
    review?: (review: Locator) => Promise<void>;
  }): Promise<void> {
    await this.page.getByRole('button', { name: 'Create session…' }).click();
    const wizard = this.createWizard;
    await wizard.getByLabel('Session name').fill(options.name);
    if (options.type) await wizard.getByRole('radio', { name: options.type, exact: true }).check();
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByLabel('H1 site (source)').selectOption({ label: `${options.h1Site} (${options.h1Address})` });
    await wizard.getByLabel('H2 site (target)').selectOption({ label: `${options.h2Site} (${options.h2Address})` });
    const pairButton = wizard.getByRole('button', { name: `Pair ${options.h1Site} with ${options.h2Site}` });
    const paired = wizard.getByTestId('sites-paired');
    await pairButton.or(paired).waitFor();
    if (await pairButton.isVisible()) await pairButton.click();
    await paired.waitFor();
    await wizard.getByRole('button', { name: 'Next' }).click();
    for (const [h1Volume, h2Volume, primarySite] of options.copySets) {
      if (primarySite) await wizard.getByLabel('Primary site').selectOption(primarySite);
      await wizard.getByLabel(`Volume at ${primarySite ?? options.h1Site}`).selectOption(h1Volume);
      await wizard.getByLabel(`Copy at ${options.h2Site}`).selectOption(h2Volume);
      await wizard.getByRole('button', { name: 'Add copy set' }).click();
    }
    await wizard.getByRole('button', { name: 'Next' }).click();
    await options.review?.(wizard.getByTestId('create-session-review'));
    await wizard.getByRole('button', { name: 'Create session' }).click();
    await wizard.waitFor({ state: 'hidden' });
    await this.card(options.name).waitFor();
  }

  /** Clicks an action on a card and returns its confirmation dialog. */
  async action(name: string, label: string): Promise<Locator> {
    await this.card(name).getByRole('button', { name: label, exact: true }).click();
    return this.page.getByRole('dialog');
  }

  /** Adds copy sets to an existing (defined or running) session from its card. */
  async addCopySets(name: string, h1Site: string, h2Site: string, copySets: [string, string][]): Promise<void> {
    await this.card(name).getByRole('button', { name: 'Add copy set…', exact: true }).click();
    const dialog = this.page.getByRole('dialog', { name: `Add copy sets to ${name}` });
    for (const [h1Volume, h2Volume] of copySets) {
      await dialog.getByLabel(`Volume at ${h1Site}`).selectOption(h1Volume);
      await dialog.getByLabel(`Copy at ${h2Site}`).selectOption(h2Volume);
      await dialog.getByRole('button', { name: 'Add copy set', exact: true }).click();
    }
    await dialog.getByRole('button', { name: copySets.length > 1 ? `Add ${copySets.length} copy sets to ${name}` : `Add to ${name}` }).click();
    await dialog.waitFor({ state: 'hidden' });
  }

  async exportReport(kind: 'session' | 'cluster', name: string, format: 'CSV' | 'JSON' | 'PDF'): Promise<Download> {
    await this.page.getByRole('button', { name: `Export ${kind} ${name}` }).click();
    const download = this.page.waitForEvent('download');
    await this.page.getByRole('menuitem', { name: format }).click();
    return download;
  }

  /** What the card says of a site whose view is only last known. */
  unknownView(name: string, site: string): Locator {
    return this.card(name).getByTestId(`session-view-unknown-${site}`);
  }

  /** Another agent of the session as the reporting agent sees it. */
  peer(name: string, site: string): Locator {
    return this.card(name).getByTestId(`session-peer-${site}`);
  }

  /** The notice that a site does not answer the console. */
  unreachable(site: string): Locator {
    return this.page.getByTestId(`site-unreachable-${site}`);
  }

  cluster(name: string): Locator {
    return this.page.getByTestId(`cluster-${name}`);
  }

  /** Creates a cluster in its dialog: processor site by its option label, members by their labels. */
  async createCluster(name: string, processor: string, members: string[]): Promise<void> {
    await this.page.getByRole('button', { name: 'Create cluster…' }).click();
    const dialog = this.page.getByRole('dialog', { name: 'Create a cluster' });
    await dialog.getByLabel('Cluster name').fill(name);
    await dialog.getByLabel(/^Processor site/).selectOption({ label: processor });
    for (const member of members) await dialog.getByLabel(member).check();
    await dialog.getByRole('button', { name: 'Create cluster' }).click();
    await dialog.waitFor({ state: 'hidden' });
  }

  async leaveCluster(session: string, cluster: string): Promise<void> {
    await this.card(session).getByRole('button', { name: `Leave cluster ${cluster}…` }).click();
    const dialog = this.page.getByRole('dialog', { name: `Remove ${session} from cluster ${cluster}?` });
    await dialog.getByRole('button', { name: `Remove from ${cluster}` }).click();
    await dialog.waitFor({ state: 'hidden' });
  }

  async joinCluster(session: string, cluster: string, processorSite: string): Promise<void> {
    await this.card(session).getByRole('button', { name: 'Add to cluster…' }).click();
    const dialog = this.page.getByRole('dialog', { name: `Add ${session} to a cluster` });
    await dialog.getByLabel('Cluster', { exact: true }).selectOption({ label: `${cluster} (processor at ${processorSite})` });
    await dialog.getByRole('button', { name: `Add to ${cluster}` }).click();
    await dialog.waitFor({ state: 'hidden' });
  }

  /** Opens Verify on a card, runs it and returns the dialog with its result. */
  async verify(name: string): Promise<Locator> {
    await this.card(name).getByRole('button', { name: 'Verify…' }).click();
    const dialog = this.page.getByRole('dialog', { name: `Verify ${name}` });
    await dialog.getByRole('button', { name: 'Verify now' }).click();
    await dialog.getByTestId('verify-summary').waitFor();
    return dialog;
  }
}
