import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, beta, clusterFixture, pairFixture, sessionFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { SessionsPage } from './SessionsPage.tsx';

const orders = sessionFixture();
const ledger = sessionFixture({ id: 's2', name: 'ledger', pairs: [pairFixture({ id: 'p2', h1Volume: 'log', h2Volume: 'log-copy' })] });
const payments = clusterFixture('payments', [orders]);
const report = {
  session: 'orders',
  startedAt: 't0',
  finishedAt: 't1',
  pairs: [{ pair: 'p1', h1Volume: 'db', h2Volume: 'db-copy', trackCount: 160, comparedTracks: 160, differingCount: 2, differingTracks: [3, 4], recheckedTracks: 0, unverifiedCount: 0, unverifiedTracks: [], codesComputed: 4 }],
  comparedTracks: 160,
  differingTracks: 2,
  unverifiedTracks: 0,
  resyncStarted: true,
};

function routes(extra: Record<string, [number, unknown]> = {}) {
  return {
    'GET /api/sites': [200, { sites: [alpha, beta] }],
    'GET /api/sites/agent-a/sessions': [200, { sessions: [orders, ledger] }],
    'GET /api/sites/agent-b/sessions': [200, { sessions: [] }],
    'GET /api/sites/agent-a/clusters': [200, { clusters: [payments] }],
    'GET /api/sites/agent-b/clusters': [200, { clusters: [] }],
    'GET /api/sites/agent-a/flash-sessions': [200, { sessions: [] }],
    'GET /api/sites/agent-b/flash-sessions': [200, { sessions: [] }],
    ...extra,
  } as Record<string, [number, unknown]>;
}

describe('dead ends closed on the Sessions screen', () => {
  it('Verify on a prepared session: what it does, then the result per copy set with bytes', async () => {
    const calls: string[] = [];
    renderWithBackend(<SessionsPage />, routes({ 'POST /api/sites/agent-a/sessions/orders/verify': [200, report] }), calls);
    const card = await screen.findByTestId('session-card-orders');
    fireEvent.click(within(card).getByRole('button', { name: 'Verify…' }));
    const dialog = await screen.findByRole('dialog', { name: 'Verify orders' });
    expect(within(dialog).getByTestId('verify-consequence')).toHaveTextContent('Compares the segment codes of every track of the 1 copy set at alpha and beta');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Verify now' }));
    expect(await within(dialog).findByTestId('verify-summary')).toHaveTextContent('160 tracks compared, 2 differing, 0 unverified (busy with writes); the differing tracks are being copied again.');
    expect(within(dialog).getByTestId('verify-pairs')).toHaveTextContent('2 (128 KiB)');
    expect(calls).toContain('POST /api/sites/agent-a/sessions/orders/verify');
  });

  it('creates a cluster at a chosen processor site with members, each asked at the processor', async () => {
    const calls: string[] = [];
    renderWithBackend(
      <SessionsPage />,
      routes({
        'POST /api/sites/agent-b/clusters': [201, clusterFixture('audit', [], { processorSite: 'beta' })],
        'POST /api/sites/agent-b/clusters/audit/members': [201, clusterFixture('audit', [ledger], { processorSite: 'beta' })],
      }),
      calls,
    );
    await screen.findByTestId('session-card-ledger');
    fireEvent.click(screen.getByRole('button', { name: 'Create cluster…' }));
    const dialog = await screen.findByRole('dialog', { name: 'Create a cluster' });
    fireEvent.change(within(dialog).getByLabelText('Cluster name'), { target: { value: 'audit' } });
    await expect.poll(() => within(dialog).getAllByRole('option').length).toBeGreaterThan(1);
    fireEvent.change(within(dialog).getByLabelText(/Processor site/), { target: { value: 'agent-b' } });
    fireEvent.click(within(dialog).getByLabelText('ledger (alpha → beta)'));
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create cluster' }));
    await expect.poll(() => calls.filter((call) => call.startsWith('POST'))).toEqual([
      'POST /api/sites/agent-b/clusters {"name":"audit","intervalSeconds":2}',
      // beta holds ledger (its H2 site): the processor's own site reports it.
      'POST /api/sites/agent-b/clusters/audit/members {"session":"ledger"}',
    ]);
  });

  it('a session joins a cluster, and leaves its own, both at the processor site', async () => {
    const calls: string[] = [];
    const gamma = clusterFixture('books', [], { processorSite: 'gamma' });
    renderWithBackend(
      <SessionsPage />,
      routes({
        'GET /api/sites/agent-b/clusters': [200, { clusters: [gamma] }],
        'POST /api/sites/agent-b/clusters/books/members': [201, gamma],
        'DELETE /api/sites/agent-a/clusters/payments/members/orders': [200, { ...payments, members: [] }],
      }),
      calls,
    );
    const member = await screen.findByTestId('session-card-orders');
    expect(within(member).getByTestId('session-cluster')).toHaveTextContent('cluster payments');
    fireEvent.click(within(member).getByRole('button', { name: 'Leave cluster payments…' }));
    const leave = await screen.findByRole('dialog', { name: 'Remove orders from cluster payments?' });
    fireEvent.click(within(leave).getByRole('button', { name: 'Remove from payments' }));
    await expect.poll(() => calls).toContain('DELETE /api/sites/agent-a/clusters/payments/members/orders');

    const other = screen.getByTestId('session-card-ledger');
    fireEvent.click(within(other).getByRole('button', { name: 'Add to cluster…' }));
    const join = await screen.findByRole('dialog', { name: 'Add ledger to a cluster' });
    fireEvent.change(within(join).getByLabelText('Cluster'), { target: { value: 'agent-b/books' } });
    // gamma holds neither side of ledger: its H1 site reports it over the peer link.
    expect(within(join).getByTestId('join-consequence')).toHaveTextContent('asking alpha over the peer link');
    fireEvent.click(within(join).getByRole('button', { name: 'Add to books' }));
    await expect.poll(() => calls).toContain('POST /api/sites/agent-b/clusters/books/members {"session":"ledger","site":"alpha"}');
  });

  it('every button has a name a screen reader can say', async () => {
    renderWithBackend(<SessionsPage />, routes());
    await screen.findByTestId('session-card-ledger');
    const unnamed = screen.getAllByRole('button').filter((button) => !(button.getAttribute('aria-label') ?? button.textContent ?? '').trim());
    expect(unnamed.map((button) => button.outerHTML.slice(0, 120))).toEqual([]);
  });
});
