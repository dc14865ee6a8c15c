import { test as base, type TestInfo } from '@playwright/test';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { agentCli, initAgent, pairingToken, startAgent, type RunningAgent } from '../../scripts/lib/agents.mjs';
import { consoleApi, startConsoleBackend, type RunningConsoleBackend } from '../../scripts/lib/backend.mjs';
import { ConsolePage } from '../pages/console-page.ts';

export interface TandemWorld {
  dir: string;
  primary: RunningAgent;
  secondary: RunningAgent;
  backend: RunningConsoleBackend;
  /** Pairs a site through the backend API (for specs that are not about the wizard). */
  ensurePaired(agent: RunningAgent): Promise<string>;
  agentCli(agent: RunningAgent, ...args: string[]): Promise<string>;
}

/**
 * One fresh temporary data dir per run: two real agents (primary,
 * secondary) and the console backend serving the built renderer.
 */
export const test = base.extend<{ console: ConsolePage }, { tandem: TandemWorld }>({
  tandem: [
    // eslint-disable-next-line no-empty-pattern
    async ({}, use) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-e2e-'));
      await initAgent({ dataDir: path.join(dir, 'primary'), site: 'primary' });
      await initAgent({ dataDir: path.join(dir, 'secondary'), site: 'secondary' });
      const primary = await startAgent({ dataDir: path.join(dir, 'primary') });
      const secondary = await startAgent({ dataDir: path.join(dir, 'secondary') });
      const backend = await startConsoleBackend({ configDir: path.join(dir, 'console') });
      const world: TandemWorld = {
        dir,
        primary,
        secondary,
        backend,
        ensurePaired: async (agent) => {
          const { sites } = (await consoleApi(backend, 'GET', '/api/sites')) as { sites: { id: string; address: string }[] };
          const known = sites.find((site) => site.address === agent.apiAddress);
          if (known) return known.id;
          const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
          const site = (await consoleApi(backend, 'POST', '/api/sites', { address: agent.apiAddress, token, expectedFingerprint: certificateFingerprint })) as { id: string };
          return site.id;
        },
        agentCli: (agent, ...args) => agentCli([...args, '--data', agent.dataDir]),
      };
      await use(world);
      // The world's agents, not the first ones: a spec may have restarted one.
      await backend.stop();
      await world.primary.stop();
      await world.secondary.stop();
      await rm(dir, { recursive: true, force: true });
    },
    { scope: 'worker', timeout: 180_000 },
  ],
  console: async ({ page, tandem }, use) => {
    await use(new ConsolePage(page, tandem.backend));
  },
});

export { expect } from '@playwright/test';

/** Saves a full-page screenshot as a test artifact (test-results/e2e/…/NAME.png, attached to the report). */
export async function screenshot(page: import('@playwright/test').Page, testInfo: TestInfo, name: string): Promise<void> {
  const file = testInfo.outputPath(`${name}.png`);
  // Finite transitions are fast-forwarded, so a closing dialog never shows half faded.
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
  await testInfo.attach(name, { path: file, contentType: 'image/png' });
}
