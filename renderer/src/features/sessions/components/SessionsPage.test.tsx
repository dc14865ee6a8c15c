import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, beta, clusterFixture, pairFixture, sessionFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { SessionsPage } from './SessionsPage.tsx';

const orders = sessionFixture({ pairs: [pairFixture({ state: 'syncing', syncedPercent: 42, outOfSyncTracks: 93, etaSeconds: 12 })], state: 'preparing', health: 'warning' });
const ledger = sessionFixture({ id: 's2', name: 'ledger', state: 'suspended', health: 'severe', pairs: [pairFixture({ id: 'p2', h1Volume: 'log', h2Volume: 'log-copy', state: 'suspended', reason: 'link down', outOfSyncTracks: 5 })] });

function routes(extra: Record<string, [number, unknown]> = {}) {
  return {
    'GET /api/sites': [200, { sites: [alpha, beta] }],
    'GET /api/sites/agent-a/sessions': [200, { sessions: [orders, ledger] }],
    'GET /api/sites/agent-b/sessions': [200, { sessions: [{ ...orders, role: 'h2' }] }],
    'GET /api/sites/agent-a/clusters': [200, { clusters: [clusterFixture('payments', [orders], { health: 'warning' })] }],
    'GET /api/sites/agent-b/clusters': [200, { clusters: [] }],
    ...extra,
  } as Record<string, [number, unknown]>;
}

describe('SessionsPage', () => {
  it('groups sessions by cluster, with state, health, per-pair progress and counts', async () => {
    renderWithBackend(<SessionsPage />, routes());
    const cluster = await screen.findByTestId('cluster-payments');
    expect(cluster).toHaveTextContent('Cluster payments');
    expect(cluster).toHaveTextContent('Warning');
    expect(cluster).toHaveTextContent('master data set 3 records');
    const card = await screen.findByTestId('session-card-orders');
    expect(within(card).getByTestId('session-state')).toHaveTextContent('Preparing');
    expect(within(card).getByTestId('session-state')).toHaveTextContent('Warning');
    expect(within(card).getByTestId('session-direction')).toHaveTextContent('alpha → beta');
    const row = within(card).getByTestId('pair-row-db');
    expect(row).toHaveTextContent('syncing 42 %');
    expect(within(row).getByTestId('out-of-sync')).toHaveTextContent('93');
    expect(within(row).getByRole('progressbar')).toBeInTheDocument();
    expect(screen.getByText('No cluster')).toBeInTheDocument();
    const other = screen.getByTestId('session-card-ledger');
    expect(other).toHaveTextContent('Severe');
    expect(other).toHaveTextContent('suspended: link down');
  });

  it('confirms an action with what will happen, then sends it', async () => {
    const calls: string[] = [];
    renderWithBackend(<SessionsPage />, routes({ 'POST /api/sites/agent-a/sessions/ledger/actions/resume': [200, { ...ledger, state: 'preparing' }] }), calls);
    const card = await screen.findByTestId('session-card-ledger');
    fireEvent.click(within(card).getByRole('button', { name: 'Resume' }));
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByTestId('action-consequence')).toHaveTextContent('Resume copies the tracks marked out-of-sync from alpha to beta');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Resume' }));
    await screen.findByTestId('session-card-ledger');
    await expect.poll(() => calls.some((call) => call.startsWith('POST /api/sites/agent-a/sessions/ledger/actions/resume'))).toBe(true);
  });

  it('needs an acknowledgement before a failover', async () => {
    const calls: string[] = [];
    const prepared = { ...orders, state: 'prepared' as const, health: 'normal' as const };
    renderWithBackend(<SessionsPage />, routes({ 'GET /api/sites/agent-a/sessions': [200, { sessions: [prepared] }] }), calls);
    const card = await screen.findByTestId('session-card-orders');
    fireEvent.click(within(card).getByRole('button', { name: 'Recover (failover)…' }));
    const dialog = await screen.findByRole('dialog');
    expect(dialog).toHaveTextContent('Recover makes the copy volumes writable at beta');
    expect(within(dialog).getByRole('button', { name: 'Recover (failover)' })).toBeDisabled();
    fireEvent.click(within(dialog).getByLabelText('I understand what this does to both sites'));
    expect(within(dialog).getByRole('button', { name: 'Recover (failover)' })).not.toBeDisabled();
    expect(calls.filter((call) => call.startsWith('POST'))).toEqual([]);
  });

  it('shows a refused action with its problem code', async () => {
    renderWithBackend(
      <SessionsPage />,
      routes({ 'POST /api/sites/agent-a/sessions/ledger/actions/resume': [409, { problem: 'invalid-state', message: 'session ledger is suspending' }] }),
    );
    const card = await screen.findByTestId('session-card-ledger');
    fireEvent.click(within(card).getByRole('button', { name: 'Resume' }));
    const dialog = await screen.findByRole('dialog');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Resume' }));
    expect(await within(dialog).findByTestId('problem')).toHaveTextContent('invalid-state');
  });
});

describe('SessionsPage at scale', () => {
  const many = Array.from({ length: 60 }, (_, i) =>
    sessionFixture({
      id: `m${i}`,
      name: `app-${String(i).padStart(3, '0')}`,
      state: i % 40 === 7 ? 'suspended' : 'prepared',
      health: i % 40 === 7 ? 'severe' : 'normal',
      pairs: [pairFixture({ id: `mp${i}`, h1Volume: `vol-${i}`, h2Volume: `copy-${i}` })],
    }),
  );
  const manyRoutes = () =>
    routes({
      'GET /api/sites/agent-a/sessions': [200, { sessions: many }],
      'GET /api/sites/agent-b/sessions': [200, { sessions: [] }],
      'GET /api/sites/agent-a/clusters': [200, { clusters: [] }],
    });
  const cards = () => screen.queryAllByTestId(/^session-card-/);

  it('draws one page of cards, shows more on request, and says how many are shown', async () => {
    renderWithBackend(<SessionsPage />, manyRoutes());
    await screen.findByTestId('session-card-app-000');
    expect(cards()).toHaveLength(50);
    expect(screen.getByTestId('sessions-shown')).toHaveTextContent('50 of 60 shown');
    fireEvent.click(screen.getByRole('button', { name: 'Show 10 more' }));
    await expect.poll(() => cards().length, { timeout: 20_000 }).toBe(60);
    expect(screen.queryByRole('button', { name: /Show \d+ more/ })).toBeNull();
    expect(screen.getByTestId('sessions-shown')).toHaveTextContent('60 of 60 shown');
  }, 60_000);

  it('searches by name, site and volume, and filters what needs attention', async () => {
    renderWithBackend(<SessionsPage />, manyRoutes());
    await screen.findByTestId('session-card-app-000');
    const search = screen.getByLabelText('Search sessions');
    fireEvent.change(search, { target: { value: 'copy-57' } });
    await expect.poll(() => cards().map((card) => card.dataset.testid)).toEqual(['session-card-app-057']);
    fireEvent.change(search, { target: { value: 'app-05 alpha' } });
    await expect.poll(() => cards().length).toBe(10); // app-050 .. app-059, all at alpha
    fireEvent.change(search, { target: { value: 'nothing-like-it' } });
    await screen.findByTestId('sessions-none-match');
    fireEvent.change(search, { target: { value: '' } });
    fireEvent.click(screen.getByRole('radio', { name: 'Needs attention' }));
    // The suspended ones (7 and 47: the second beyond the first page), whatever page they were on.
    await expect.poll(() => cards().map((card) => card.dataset.testid), { timeout: 20_000 }).toEqual(['session-card-app-007', 'session-card-app-047']);
    expect(screen.getByTestId('sessions-shown')).toHaveTextContent('2 of 60 shown');
  }, 60_000);
  it('a card fetches no journal until its Protection toggle opens, then the one at the session\'s secondary site', async () => {
    const calls: string[] = [];
    renderWithBackend(<SessionsPage />, routes({ 'GET /api/sites/agent-b/sessions/orders/journal': [404, { problem: 'not-found', message: 'session orders has no journal' }] }), calls);
    const card = await screen.findByTestId('session-card-orders');
    await screen.findByTestId('session-card-ledger');
    expect(calls.some((call) => call.includes('/journal'))).toBe(false);
    fireEvent.click(within(card).getByRole('button', { name: 'Protection' }));
    expect(await within(card).findByTestId('protection-none')).toHaveTextContent('No journal');
    expect(calls.filter((call) => call.includes('/journal'))).toEqual(['GET /api/sites/agent-b/sessions/orders/journal']);
  });
});
