import { pairingToken } from '../scripts/lib/agents.mjs';
import { expect, screenshot, test } from './support/fixtures.ts';

test.describe.serial('sites', () => {
  test('an empty console says what to do next', async ({ console: tandem, tandem: world }, testInfo) => {
    const { sites } = (await fetch(`${world.backend.url}/api/sites`, { headers: { authorization: `Bearer ${world.backend.token}` } }).then((r) => r.json())) as { sites: unknown[] };
    test.skip(sites.length > 0, 'sites were already paired by another spec in this run');
    await tandem.open();
    await expect(tandem.sites.emptyState).toContainText('No site is connected yet');
    await screenshot(tandem.page, testInfo, 'sites-empty');
  });

  test('a wrong pairing token is refused with a clear message', async ({ console: tandem, tandem: world }, testInfo) => {
    await tandem.open();
    await tandem.sites.startWizard(world.primary.apiAddress, 'tdm_this-is-not-the-token');
    await expect(tandem.sites.probedSite).toHaveText('primary');
    await tandem.sites.confirm();
    await expect(tandem.sites.problem).toContainText('token-invalid');
    await expect(tandem.sites.problem).toContainText(/token/i);
    await screenshot(tandem.page, testInfo, 'wizard-wrong-token');
  });

  test('a fingerprint that does not match the agent is refused', async ({ console: tandem, tandem: world }, testInfo) => {
    const { token } = await pairingToken(world.primary.dataDir);
    await tandem.open();
    await tandem.sites.startWizard(world.primary.apiAddress, token);
    await tandem.sites.confirm(`${'AB:'.repeat(31)}AB`);
    await expect(tandem.sites.problem).toContainText('certificate-mismatch');
    await expect(tandem.sites.problem).toContainText('not the expected');
    await screenshot(tandem.page, testInfo, 'wizard-fingerprint-mismatch');
  });

  test('an address where no agent listens is reported as unreachable', async ({ console: tandem }) => {
    await tandem.open();
    await tandem.sites.startWizard('127.0.0.1:1', 'tdm_x');
    await expect(tandem.sites.problem).toContainText('agent-unreachable');
  });

  test('both demo sites connect through the wizard after the fingerprint is confirmed', async ({ console: tandem, tandem: world }, testInfo) => {
    await tandem.open();
    for (const [agent, name] of [
      [world.primary, 'primary'],
      [world.secondary, 'secondary'],
    ] as const) {
      const { token, certificateFingerprint } = await pairingToken(agent.dataDir);
      await tandem.sites.startWizard(agent.apiAddress, token);
      await expect(tandem.sites.probedSite).toHaveText(name);
      await expect(tandem.sites.probedFingerprint).toHaveText(certificateFingerprint);
      if (name === 'primary') await screenshot(tandem.page, testInfo, 'wizard-confirm');
      await tandem.sites.confirm(certificateFingerprint);
      await tandem.sites.finish();
      await expect(tandem.sites.card(name).getByTestId('connection-state')).toHaveText('connected');
    }
    await expect(tandem.sites.card('primary')).toContainText('agent 0.1.0');
    await expect(tandem.sites.card('primary')).toContainText('Pool:');
    await screenshot(tandem.page, testInfo, 'sites-connected');
  });

  test('the connection state follows the agent: lost, then back', async ({ console: tandem, tandem: world }) => {
    await world.ensurePaired(world.secondary);
    await tandem.open();
    const state = tandem.sites.card('secondary').getByTestId('connection-state');
    await expect(state).toHaveText('connected');
    const { startAgent } = await import('../scripts/lib/agents.mjs');
    const [, port] = world.secondary.apiAddress.split(':');
    const [, nbdPort] = world.secondary.nbdAddress.split(':');
    const [, linkPort] = world.secondary.linkAddress.split(':');
    await world.secondary.stop();
    await expect(state).toHaveText('reconnecting');
    world.secondary = await startAgent({ dataDir: world.secondary.dataDir, apiPort: Number(port), nbdPort: Number(nbdPort), linkPort: Number(linkPort) });
    await expect(state).toHaveText('connected', { timeout: 60_000 });
  });
});
