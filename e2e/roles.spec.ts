import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { agentCli, initAgent, pairingToken, startAgent, type RunningAgent } from '../scripts/lib/agents.mjs';
import { consoleApi, startConsoleBackend, type RunningConsoleBackend } from '../scripts/lib/backend.mjs';
import { ConsolePage } from './pages/console-page.ts';
import { SessionsPage } from './pages/sessions-page.ts';
import { expect, screenshot, test } from './support/fixtures.ts';

/**
 * Roles end to end: two real agents mirroring a session (set up by their
 * local administrators with the CLI), and a console paired with both as
 * monitor: once with a token made for the monitor role, once choosing
 * monitor in the pairing form from an administrator's token. The console
 * shows the session but no failover (and says why), and the agent refuses a
 * failover sent through the console's API anyway (403 forbidden-role).
 */

const session = 'roles-orders';

interface SessionJson {
  state: string;
}

async function sessionState(agent: RunningAgent): Promise<string> {
  return (JSON.parse(await agentCli(['session', 'show', session, '--json', '--data', agent.dataDir])) as SessionJson).state;
}

/** Polls the session's state at an agent until it is `state` (deadline, no fixed sleep). */
async function untilState(agent: RunningAgent, state: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    last = await sessionState(agent).catch((error: Error) => error.message);
    if (last === state) return;
    if (Date.now() > deadline) throw new Error(`${session} stayed ${last}, never ${state}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test.describe.serial('roles: a monitor-role console cannot fail over', () => {
  let dir: string;
  let primary: RunningAgent;
  let secondary: RunningAgent;
  let backend: RunningConsoleBackend;
  const siteIds: Record<string, string> = {};

  test.beforeAll(async () => {
    test.setTimeout(180_000);
    dir = await mkdtemp(path.join(os.tmpdir(), 'tandem-e2e-roles-'));
    await initAgent({ dataDir: path.join(dir, 'primary'), site: 'primary' });
    await initAgent({ dataDir: path.join(dir, 'secondary'), site: 'secondary' });
    [primary, secondary] = await Promise.all([startAgent({ dataDir: path.join(dir, 'primary') }), startAgent({ dataDir: path.join(dir, 'secondary') })]);
    // The sites' own administrators set the mirror up on their hosts (local admin certificates).
    const cli = (agent: RunningAgent, ...args: string[]) => agentCli([...args, '--data', agent.dataDir]);
    await cli(primary, 'volume', 'create', 'roles-db', '16M');
    await cli(secondary, 'volume', 'create', 'roles-db-copy', '16M');
    const { token } = await pairingToken(secondary.dataDir);
    await cli(primary, 'pair', '--with', secondary.apiAddress, '--token', token);
    await cli(primary, 'session', 'create', session, '--type', 'sync', '--peer', 'secondary');
    await cli(primary, 'session', 'add', session, 'roles-db', 'roles-db-copy');
    await cli(primary, 'session', 'start', session);
    await untilState(primary, 'prepared');
    backend = await startConsoleBackend({ configDir: path.join(dir, 'console') });
    // The primary hands out a token made for the monitor role.
    const monitorToken = JSON.parse(await cli(primary, 'token', '--role', 'monitor', '--json')) as { token: string; certificateFingerprint: string; role: string };
    expect(monitorToken.role).toBe('monitor');
    siteIds.primary = (
      (await consoleApi(backend, 'POST', '/api/sites', { address: primary.apiAddress, token: monitorToken.token, expectedFingerprint: monitorToken.certificateFingerprint })) as { id: string }
    ).id;
  });

  test.afterAll(async () => {
    await backend?.stop();
    await Promise.all([primary?.stop(), secondary?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the pairing form picks the role: monitor, from an administrator token', async ({ page }, testInfo) => {
    const console = new ConsolePage(page, backend);
    await console.open();
    // `tandem-agent token` without --role: an administrator's token; the console asks for less.
    const { token } = await pairingToken(secondary.dataDir);
    await page.getByRole('button', { name: 'Connect to a site' }).first().click();
    const wizard = console.sites.wizard;
    await wizard.getByLabel('Agent address').fill(secondary.apiAddress);
    await wizard.getByLabel('Pairing token').fill(token);
    await wizard.getByLabel('Role').selectOption('monitor');
    await wizard.getByRole('button', { name: 'Next' }).click();
    await expect(console.sites.probedSite).toHaveText('secondary');
    await console.sites.confirm();
    await expect(wizard.getByTestId('connect-role')).toHaveText('monitor');
    await console.sites.finish();
    await expect(console.sites.card('secondary').getByTestId('site-role')).toHaveText('monitor');
    await expect(console.sites.card('primary').getByTestId('site-role')).toHaveText('monitor');
    await screenshot(page, testInfo, 'roles-sites-monitor');
    const { sites } = (await consoleApi(backend, 'GET', '/api/sites')) as { sites: { id: string; site: string; role: string | null }[] };
    siteIds.secondary = sites.find((site) => site.site === 'secondary')!.id;
    expect(sites.map((site) => site.role)).toEqual(['monitor', 'monitor']);
  });

  test('the session shows, but no failover: one sentence says the operator role is needed', async ({ page }, testInfo) => {
    const console = new ConsolePage(page, backend);
    const sessions = new SessionsPage(page);
    await console.open();
    await sessions.open();
    await expect(sessions.state(session)).toContainText('Prepared');
    const card = sessions.card(session);
    await expect(card.getByTestId('role-note')).toContainText(/Needs the operator role; this console is paired with (primary|secondary) as monitor\./);
    await expect(card.getByRole('button', { name: 'Recover (failover)…' })).toHaveCount(0);
    await expect(card.getByRole('button', { name: 'Suspend' })).toHaveCount(0);
    await expect(page.getByRole('button', { name: 'Create session…' })).toBeDisabled();
    await screenshot(page, testInfo, 'roles-session-monitor');
    await console.openSite('primary');
    await expect(page.getByRole('button', { name: 'Create volume' })).toBeDisabled();
  });

  test('the API refuses a failover from this console: 403 forbidden-role, and the session stays prepared', async () => {
    for (const site of ['primary', 'secondary']) {
      const response = await fetch(`${backend.url}/api/sites/${siteIds[site]}/sessions/${session}/actions/recover`, {
        method: 'POST',
        headers: { authorization: `Bearer ${backend.token}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(response.status, site).toBe(403);
      const problem = (await response.json()) as { problem: string; message: string; detail?: Record<string, unknown> };
      expect(problem.problem).toBe('forbidden-role');
      expect(problem.message).toContain('needs the operator role');
    }
    expect(await sessionState(primary)).toBe('prepared');
    expect(await sessionState(secondary)).toBe('prepared');
    // The agent's audit trail names the refused caller with its role.
    const audit = JSON.parse(await agentCli(['audit', 'list', '--json', '--session', session, '--data', secondary.dataDir])) as {
      entries: { url: string; problem: string | null; client: { role: string | null } | null }[];
    };
    const refused = audit.entries.find((entry) => entry.url.endsWith('/actions/recover') && entry.problem === 'forbidden-role');
    expect(refused?.client?.role).toBe('monitor');
  });
});
