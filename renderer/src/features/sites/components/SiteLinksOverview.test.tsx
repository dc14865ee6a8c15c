import { screen, within } from '@testing-library/react';
import type { PeerInfo } from '@tandem/contract';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { alpha, beta, sessionFixture } from '../../sessions/hooks/session-fixtures.test-helpers.ts';
import { SitesPage } from './SitesPage.tsx';

function peerFixture(site: string, overrides: Partial<PeerInfo> = {}): PeerInfo {
  return {
    agentId: `agent-${site}`,
    site,
    linkAddress: '127.0.0.1:9',
    apiAddress: '127.0.0.1:8',
    caFingerprint: 'AA',
    pairedAt: '2026-01-01T00:00:00.000Z',
    link: 'connected',
    linkProblem: null,
    clock: { offsetMs: 0, rttMs: 0.4, measuredAt: '2026-01-01T00:00:00.000Z' },
    ...overrides,
  };
}

const pool = [200, { trackSize: 65536, extentCount: 1, usedExtents: 0, freeExtents: 1, sharedExtents: 0, usedBytes: 0, provisionedBytes: 0, fileBytes: 0, filesystemFreeBytes: 0, volumes: 0, snapshots: 0 }];
const orders = sessionFixture({ id: 's-orders', name: 'orders', type: 'sync' });
// Failed back: production runs at beta and mirrors to alpha.
const logs = sessionFixture({ id: 's-logs', name: 'logs', type: 'async', direction: 'h2-h1', state: 'preparing', health: 'warning' });

describe('SiteLinksOverview (on the sites overview)', () => {
  it('shows the link between two sites and each session on it with its direction, mode and state', async () => {
    renderWithBackend(<SitesPage />, {
      'GET /api/sites': [200, { sites: [alpha, beta] }],
      'GET /api/sites/agent-a/pool': pool as [number, unknown],
      'GET /api/sites/agent-b/pool': pool as [number, unknown],
      'GET /api/sites/agent-a/peers': [200, { peers: [peerFixture('beta')] }],
      'GET /api/sites/agent-b/peers': [200, { peers: [peerFixture('alpha')] }],
      'GET /api/sites/agent-a/sessions': [200, { sessions: [orders, logs] }],
      'GET /api/sites/agent-b/sessions': [200, { sessions: [{ ...orders, role: 'h2' }, { ...logs, role: 'h2' }] }],
      'GET /api/sites/agent-a/clusters': [200, { clusters: [] }],
      'GET /api/sites/agent-b/clusters': [200, { clusters: [] }],
    });
    const link = await screen.findByTestId('site-link-alpha-beta');
    expect(await within(link).findByTestId('link-session-orders')).toBeInTheDocument();
    expect(within(link).getByTestId('link-state')).toHaveTextContent('link up');
    expect(within(link).getByTestId('link-end-alpha')).toHaveTextContent('alpha sees beta: connected · best round trip under 1 ms');
    const ordersRow = within(link).getByTestId('link-session-orders');
    expect(within(ordersRow).getByTestId('link-session-direction')).toHaveTextContent('alpha → beta');
    expect(within(ordersRow).getByTestId('link-session-mode')).toHaveTextContent('sync');
    expect(within(ordersRow).getByTestId('link-session-state')).toHaveTextContent('PreparedNormal');
    const logsRow = within(link).getByTestId('link-session-logs');
    expect(within(logsRow).getByTestId('link-session-direction')).toHaveTextContent('beta → alpha');
    expect(within(logsRow).getByTestId('link-session-mode')).toHaveTextContent('async');
    expect(within(logsRow).getByTestId('link-session-state')).toHaveTextContent('PreparingWarning');
  });

  it('says the truth when the other site does not answer: the link as the live site sees it, the lost end unknown since when, never "link up"', async () => {
    const lostSince = new Date(Date.now() - 30_000).toISOString();
    const unreachable = { ...beta, connection: { state: 'reconnecting' as const, since: lostSince, lastProblem: { problem: 'agent-unreachable', message: 'nothing is listening there' }, nextAttemptAt: null } };
    renderWithBackend(<SitesPage />, {
      'GET /api/sites': [200, { sites: [alpha, unreachable] }],
      'GET /api/sites/agent-a/pool': pool as [number, unknown],
      'GET /api/sites/agent-a/peers': [200, { peers: [peerFixture('beta', { link: 'connecting', clock: null })] }],
      'GET /api/sites/agent-a/sessions': [
        200,
        { sessions: [{ ...orders, health: 'severe', detail: `secondary site beta unreachable since ${lostSince}`, peers: [{ site: 'beta', role: 'target', link: 'connecting', since: lostSince, unreachableSince: lostSince }] }] },
      ],
      'GET /api/sites/agent-a/clusters': [200, { clusters: [] }],
    });
    const link = await screen.findByTestId('site-link-alpha-beta');
    expect(await within(link).findByTestId('link-session-orders')).toBeInTheDocument();
    expect(within(link).getByTestId('link-state')).toHaveTextContent('link connecting');
    expect(within(link).getByTestId('link-state')).not.toHaveTextContent('link up');
    expect(within(link).getByTestId('link-end-beta')).toHaveTextContent(/^beta: unknown since .+ \(\d+ s ago\), unreachable, reconnecting/);
    const row = within(link).getByTestId('link-session-orders');
    expect(within(row).getByTestId('link-session-direction')).toHaveTextContent('alpha → beta');
    expect(within(row).getByTestId('link-session-state')).toHaveTextContent('PreparedSevere');
    expect(within(row).getByTestId('link-session-detail')).toHaveTextContent(/^secondary site beta unreachable since \d/);
  });
});
