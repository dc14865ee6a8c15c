import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { Role } from '@tandem/contract';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, beta, clusterFixture, pairFixture, sessionFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { SessionsPage } from './SessionsPage.tsx';

/** The sessions view gated by the console's role at each site (the role the agent reports for its certificate). */
const orders = sessionFixture({ state: 'prepared', health: 'normal', pairs: [pairFixture({ state: 'duplex' })] });

function routes(role: Role) {
  return {
    'GET /api/sites': [200, { sites: [{ ...alpha, role }, { ...beta, role }] }],
    'GET /api/sites/agent-a/sessions': [200, { sessions: [orders] }],
    'GET /api/sites/agent-b/sessions': [200, { sessions: [{ ...orders, role: 'h2' }] }],
    'GET /api/sites/agent-a/clusters': [200, { clusters: [clusterFixture('payments', [orders])] }],
    'GET /api/sites/agent-b/clusters': [200, { clusters: [] }],
  } as Record<string, [number, unknown]>;
}

describe('sessions by role', () => {
  it('monitor: no failover or other session action, and one sentence says why; creating is disabled with the reason', async () => {
    renderWithBackend(<SessionsPage />, routes('monitor'));
    const card = await screen.findByTestId('session-card-orders');
    const note = await within(card).findByTestId('role-note');
    expect(note).toHaveTextContent('Needs the operator role; this console is paired with alpha as monitor');
    expect(within(card).queryByRole('button', { name: 'Recover (failover)…' })).toBeNull();
    expect(within(card).queryByRole('button', { name: 'Suspend' })).toBeNull();
    expect(within(card).queryByRole('button', { name: 'Verify…' })).toBeNull();
    expect(within(card).queryByRole('button', { name: /Remove copy set/ })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Create session…' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Create cluster…' })).toBeDisabled();
    expect(screen.getByLabelText(/Needs the administrator role at a site; this console is paired as monitor at every site/)).toBeInTheDocument();
    expect(within(screen.getByTestId('cluster-payments')).getByRole('button', { name: 'Delete cluster…' })).toBeDisabled();
  });

  it('operator: fails over and suspends, but defining and deleting are disabled with the reason', async () => {
    renderWithBackend(<SessionsPage />, routes('operator'));
    const card = await screen.findByTestId('session-card-orders');
    expect(await within(card).findByRole('button', { name: 'Recover (failover)…' })).not.toBeDisabled();
    expect(within(card).getByRole('button', { name: 'Suspend' })).not.toBeDisabled();
    expect(within(card).queryByTestId('role-note')).toBeNull();
    expect(within(card).getByRole('button', { name: 'Add copy set…' })).toBeDisabled();
    expect(within(card).getAllByLabelText('Needs the administrator role; this console is paired with alpha as operator.').length).toBeGreaterThan(0);
    expect(screen.getByRole('button', { name: 'Create session…' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Create cluster…' })).not.toBeDisabled();
    fireEvent.click(within(card).getByRole('button', { name: 'Recover (failover)…' }));
    expect(await screen.findByRole('dialog')).toBeInTheDocument();
  });

  it('administrator: everything is offered', async () => {
    renderWithBackend(<SessionsPage />, routes('administrator'));
    const card = await screen.findByTestId('session-card-orders');
    expect(await within(card).findByRole('button', { name: 'Add copy set…' })).not.toBeDisabled();
    expect(within(card).getByRole('button', { name: 'Recover (failover)…' })).not.toBeDisabled();
    expect(screen.queryAllByTestId('role-gated')).toHaveLength(0);
  });
});
