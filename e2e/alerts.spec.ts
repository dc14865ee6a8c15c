import type { Page } from '@playwright/test';
import { startAgent, type RunningAgent } from '../scripts/lib/agents.mjs';
import { consoleApi } from '../scripts/lib/backend.mjs';
import { ConsolePage } from './pages/console-page.ts';
import { SessionsPage } from './pages/sessions-page.ts';
import { expect, screenshot, test } from './support/fixtures.ts';
import { startMirrorWorld, type MirrorWorld } from './support/mirror-world.ts';

const mib = 1024 * 1024;
const session = 'e2e-alerts';
/** Agents evaluate their alert rules every 300 ms and clear after 2 s away (the defaults are 5 s and 10 s). */
const agentEnv = { TANDEM_ALERT_INTERVAL_MS: '300', TANDEM_ALERT_CLEAR_MS: '2000' };
/** A restarted agent, reconnected and resynced: generous on a loaded machine (states are waited for, not times). */
const recoveryMs = 120_000;

/**
 * Alerts in the console with real agents: the session's link-down threshold
 * set in the thresholds form; the secondary agent killed, the primary's
 * link-down alert reaches the notification centre (unread count on the
 * bell, the alert in the panel, active); the secondary back, the alert
 * shows cleared. Mark all read empties the count.
 */
test.describe.serial('alerts: the notification centre', () => {
  let world: MirrorWorld;
  let secondary: RunningAgent;

  test.beforeAll(async () => {
    test.setTimeout(240_000);
    world = await startMirrorWorld({ reconnectMaxMs: 2000, agentEnv });
    secondary = world.secondary;
    const ids = world.siteIds;
    const api = (method: string, route: string, body?: unknown) => consoleApi(world.backend, method, route, body);
    await api('POST', `/api/sites/${ids.primary}/peers`, { otherSiteId: ids.secondary });
    await api('POST', `/api/sites/${ids.primary}/volumes`, { name: 'alerts-db', sizeBytes: 16 * mib });
    await api('POST', `/api/sites/${ids.secondary}/volumes`, { name: 'alerts-db-copy', sizeBytes: 16 * mib });
    await api('POST', `/api/sites/${ids.primary}/sessions`, { name: session, type: 'async', peer: 'secondary' });
    await api('POST', `/api/sites/${ids.primary}/sessions/${session}/pairs`, { h1Volume: 'alerts-db', h2Volume: 'alerts-db-copy' });
    await api('POST', `/api/sites/${ids.primary}/sessions/${session}/actions/start`, {});
    await expect.poll(async () => ((await api('GET', `/api/sites/${ids.primary}/sessions/${session}`)) as { state: string }).state, { timeout: 120_000 }).toBe('prepared');
  });

  test.afterAll(async () => {
    await world?.stop();
    await secondary?.stop();
  });

  async function openSessions(page: Page): Promise<SessionsPage> {
    const tandem = new ConsolePage(page, world.backend);
    const sessions = new SessionsPage(page);
    await tandem.open();
    await sessions.open();
    await expect(sessions.state(session)).toContainText('Prepared', { timeout: recoveryMs });
    return sessions;
  }

  test('a threshold form refuses a negative value and sets the link-down seconds', async ({ page }) => {
    const sessions = await openSessions(page);
    await sessions.card(session).getByRole('button', { name: 'Alert thresholds…' }).click();
    const form = page.getByTestId('alert-thresholds-form');
    await expect(form.getByTestId('threshold-effective')).toContainText('link down after 30 s');
    await form.getByTestId('threshold-link-down').fill('-2');
    await expect(form).toContainText('linkDownSeconds must be above 0 seconds');
    await expect(form.getByTestId('threshold-save')).toBeDisabled();
    await form.getByTestId('threshold-link-down').fill('1');
    await form.getByTestId('threshold-save').click();
    await expect(form).toBeHidden();
    const ids = world.siteIds;
    const view = (await consoleApi(world.backend, 'GET', `/api/sites/${ids.primary}/sessions/${session}/alert-thresholds`)) as { effective: { linkDownSeconds: number } };
    expect(view.effective.linkDownSeconds).toBe(1);
  });

  test('the secondary killed: a link-down alert reaches the notification centre; back, it clears', async ({ page }, testInfo) => {
    test.setTimeout(300_000);
    const sessions = await openSessions(page);
    const bell = page.getByTestId('alert-bell');
    await expect(bell).toHaveAttribute('aria-label', 'Alerts, 0 unread');

    secondary.process.kill('SIGKILL');
    await secondary.exited;
    // Raised at the primary, pushed as an event, counted on the bell.
    await expect(bell).toHaveAttribute('aria-label', /Alerts, [1-9]\d* unread/, { timeout: 30_000 });
    await bell.click();
    const linkDown = page.locator('[data-testid^="alert-"][data-state]', { hasText: `primary: ${session} link to secondary` }).first();
    await expect(linkDown).toHaveAttribute('data-state', 'active');
    await expect(linkDown).toContainText('critical');
    await expect(linkDown).toContainText('the link to secondary has been down since');
    await screenshot(page, testInfo, 'alerts-raised');
    // Read: it stays listed while active, no longer counted (the suspension may raise an alert of its own a moment later).
    await page.getByRole('button', { name: 'Mark all read' }).click();
    await expect(linkDown).toHaveAttribute('data-read', 'true');
    await expect(linkDown.getByRole('button', { name: /Mark .* read/ })).toBeHidden();

    const port = (address: string) => Number(address.split(':').at(-1));
    secondary = await startAgent({
      dataDir: secondary.dataDir,
      apiPort: port(secondary.apiAddress),
      nbdPort: port(secondary.nbdAddress),
      linkPort: port(secondary.linkAddress),
      env: agentEnv,
    });
    await expect(linkDown).toHaveAttribute('data-state', 'cleared', { timeout: recoveryMs });
    await screenshot(page, testInfo, 'alerts-cleared');
    // Nothing active is left unread once both sites are back (cleared alerts are never counted).
    await expect(bell).toHaveAttribute('aria-label', 'Alerts, 0 unread', { timeout: recoveryMs });
    await expect(sessions.state(session)).toContainText('Prepared', { timeout: recoveryMs });
  });
});
