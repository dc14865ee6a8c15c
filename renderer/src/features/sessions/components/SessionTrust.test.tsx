import { act, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { SiteList, SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { renderWithBackend } from '../../../test/render.tsx';
import { flashSessionFixture } from '../../flash/hooks/flash-fixtures.test-helpers.ts';
import { siteKeys } from '../../sites/api/site-keys.ts';
import { alpha, beta, clusterFixture, pairFixture, sessionFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { SessionsPage } from './SessionsPage.tsx';

const lostAt = '2026-01-01T12:01:03.000Z';
const orders = sessionFixture({ observedAt: new Date().toISOString() });
const ledger = sessionFixture({ id: 's2', name: 'ledger', pairs: [pairFixture({ id: 'p2', h1Volume: 'log', h2Volume: 'log-copy' })] });
/** beta's view of orders once alpha went silent: the agent's own words. */
const ordersAtBeta = sessionFixture({
  role: 'h2',
  health: 'warning',
  detail: `primary site alpha unreachable since ${lostAt} (last known: prepared)`,
  peers: [{ site: 'alpha', role: 'source', link: 'connecting', since: lostAt, unreachableSince: lostAt }],
  stateFrom: { site: 'alpha', at: '2026-01-01T12:00:00.000Z' },
  observedAt: new Date().toISOString(),
});

function unreachable(site: SiteSummary): SiteSummary {
  return {
    ...site,
    connection: { state: 'reconnecting', since: lostAt, lastProblem: { problem: 'agent-unreachable', message: 'nothing is listening there' }, nextAttemptAt: null },
  };
}

function routes(betaSessions = [{ ...orders, role: 'h2' as const }]) {
  return {
    'GET /api/sites': [200, { sites: [alpha, beta] }],
    'GET /api/sites/agent-a/sessions': [200, { sessions: [orders, ledger] }],
    'GET /api/sites/agent-b/sessions': [200, { sessions: betaSessions }],
    'GET /api/sites/agent-a/clusters': [200, { clusters: [clusterFixture('payments', [orders])] }],
    'GET /api/sites/agent-b/clusters': [200, { clusters: [] }],
    'GET /api/sites/agent-a/flash-sessions': [200, { sessions: [flashSessionFixture()] }],
    'GET /api/sites/agent-b/flash-sessions': [200, { sessions: [] }],
  } as Record<string, [number, unknown]>;
}

describe('state an administrator can trust', () => {
  it('says where each state comes from and how old it is', async () => {
    renderWithBackend(<SessionsPage />, routes());
    const card = await screen.findByTestId('session-card-orders');
    expect(await within(card).findByTestId('session-source')).toHaveTextContent(/^from alpha, (just now|\d+ s ago) · state set at alpha/);
    expect(within(card).getByTestId('session-peer-beta')).toHaveTextContent('beta (target): connected');
    expect(within(card).getByTestId('recoverable')).toHaveTextContent('yes');
    expect(screen.queryByTestId('site-unreachable-alpha')).toBeNull();
  });

  it('when a site stops answering: its last known views stay, marked unknown since then, health at least warning, and no section vanishes', async () => {
    const fake = routes();
    const { queryClient } = renderWithBackend(<SessionsPage />, fake);
    await screen.findByTestId('session-card-ledger');
    await screen.findByTestId('flash-card-nightly');
    // alpha goes silent; beta's agent notices and says so.
    fake['GET /api/sites/agent-b/sessions'] = [200, { sessions: [ordersAtBeta] }];
    act(() => queryClient.setQueryData<SiteList>(siteKeys.list(), { sites: [unreachable(alpha), beta] }));
    await act(() => queryClient.invalidateQueries({ queryKey: ['sessions', 'agent-b'] }));

    const banner = await screen.findByTestId('site-unreachable-alpha');
    expect(banner).toHaveTextContent('alpha does not answer the console since');
    expect(banner).toHaveTextContent('last known 2 sessions');

    // orders: beta's live view is shown, in its own words; alpha's view is unknown since the loss.
    const card = screen.getByTestId('session-card-orders');
    await expect.poll(() => within(card).getByTestId('session-source').textContent).toMatch(/^from beta/);
    expect(within(card).getByTestId('session-state')).toHaveTextContent('Prepared');
    expect(within(card).getByTestId('session-state')).toHaveTextContent('Warning');
    expect(card).toHaveTextContent('primary site alpha unreachable since');
    expect(within(card).getByTestId('session-view-unknown-alpha')).toHaveTextContent(/alpha: unknown since .*nothing is listening there.*last known Prepared · Normal · recoverable: yes/);
    expect(within(card).getByTestId('session-peer-alpha')).toHaveTextContent('alpha (source): unreachable since');

    // ledger is known only from alpha: unknown, its last known data kept and marked, no actions.
    const only = screen.getByTestId('session-card-ledger');
    expect(within(only).getByTestId('session-unknown')).toHaveTextContent(/Unknown since/);
    expect(within(only).getByTestId('session-unknown')).toHaveTextContent('Last known: Prepared · Normal · recoverable: yes, from alpha');
    expect(within(only).getByTestId('session-state')).toHaveTextContent('Unknown');
    expect(within(only).getByTestId('session-state')).toHaveTextContent('Warning');
    expect(within(only).getByTestId('recoverable')).toHaveTextContent('yes (last known)');
    expect(within(only).queryByRole('button', { name: 'Suspend' })).toBeNull();

    // The cluster alpha runs and its flash copies: kept, marked, with a placeholder that says why.
    expect(screen.getByTestId('cluster-gap-alpha')).toHaveTextContent(/alpha unreachable since .*; last known 1 cluster \(as of/);
    expect(within(screen.getByTestId('cluster-payments')).getByTestId('cluster-unknown')).toHaveTextContent('Unknown since');
    expect(within(screen.getByTestId('cluster-payments')).getByTestId('cluster-state')).toHaveTextContent('Warning');
    expect(screen.getByTestId('flash-gap-alpha')).toHaveTextContent('last known 1 flash copy');
    const flash = screen.getByTestId('flash-card-nightly');
    expect(within(flash).getByTestId('flash-unknown')).toHaveTextContent('Unknown since');
    expect(within(flash).queryByRole('button', { name: /Withdraw/ })).toBeNull();
  });

  it('a site never read since the console started: every section says its entries are not known', async () => {
    renderWithBackend(<SessionsPage />, { ...routes(), 'GET /api/sites': [200, { sites: [unreachable(alpha), beta] }] });
    expect(await screen.findByTestId('cluster-gap-alpha')).toHaveTextContent('its clusters are not known (nothing read from it since this console started)');
    expect(screen.getByTestId('flash-gap-alpha')).toHaveTextContent('its flash copies are not known');
    expect(screen.getByTestId('session-gap-alpha')).toHaveTextContent('its sessions are not known');
    // beta's view of orders is all there is, and beta itself vouches for it.
    const card = await screen.findByTestId('session-card-orders');
    expect(within(card).getByTestId('session-source')).toHaveTextContent(/^from beta/);
  });

  it('a clock far off the console is said, and recoverable says why not', async () => {
    const skewed = sessionFixture({ state: 'preparing', recoverable: false, observedAt: new Date(Date.now() + 60_000).toISOString(), pairs: [pairFixture({ state: 'syncing', syncedPercent: 10 })] });
    renderWithBackend(<SessionsPage />, { ...routes(), 'GET /api/sites/agent-a/sessions': [200, { sessions: [skewed] }] });
    const card = await screen.findByTestId('session-card-orders');
    await expect.poll(() => within(card).queryByTestId('clock-offset')?.textContent ?? '').toMatch(/alpha's clock is about 60 s ahead of this console's/);
    expect(within(card).getByTestId('recoverable')).toHaveTextContent('no');
    expect(within(card).getByTestId('recoverable-note')).toHaveTextContent('copying db: the target is not a consistent image until the session is Prepared');
  });

  it("another site's clock as the reporting agent measured it is said beside the state's age, with the agent's warning", async () => {
    const skewed = sessionFixture({
      health: 'warning',
      detail: "the clock of beta is 120.0 s ahead of this agent's (measured over the peer link, ±1 ms): times are shown in alpha's clock; set the hosts' clocks right (NTP)",
      observedAt: new Date().toISOString(),
      peers: [{ site: 'beta', role: 'target', link: 'connected', since: '2026-01-01T00:00:00.000Z', unreachableSince: null, clock: { offsetMs: 120_000, rttMs: 2, measuredAt: new Date().toISOString() } }],
    });
    renderWithBackend(<SessionsPage />, { ...routes(), 'GET /api/sites/agent-a/sessions': [200, { sessions: [skewed] }] });
    const card = await screen.findByTestId('session-card-orders');
    expect(await within(card).findByTestId('peer-clock-beta')).toHaveTextContent("beta's clock is 2 min ahead of alpha's");
    expect(card).toHaveTextContent('the clock of beta is 120.0 s ahead');
    // A clock within latency is not worth a word.
    expect(within(card).queryByTestId('peer-clock-alpha')).toBeNull();
  });
});
