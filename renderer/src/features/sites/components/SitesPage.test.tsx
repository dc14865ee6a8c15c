import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { siteFixture } from '../../../test/fixtures.ts';
import { SitesPage } from './SitesPage.tsx';

describe('SitesPage', () => {
  it('says what to do when no site is connected', async () => {
    renderWithBackend(<SitesPage />, { 'GET /api/sites': [200, { sites: [] }] });
    expect(await screen.findByTestId('sites-empty')).toHaveTextContent(/tandem-agent token/);
  });

  it('lists sites with their connection state and the last problem', async () => {
    const offline = siteFixture({
      id: 'agent-2',
      site: 'secondary',
      connection: { state: 'reconnecting', since: 'x', lastProblem: { problem: 'agent-unreachable', message: 'nothing is listening there' }, nextAttemptAt: null },
    });
    renderWithBackend(<SitesPage />, {
      'GET /api/sites': [200, { sites: [siteFixture(), offline] }],
      'GET /api/sites/agent-1/pool': [
        200,
        { trackSize: 65536, extentCount: 10, usedExtents: 1, freeExtents: 9, sharedExtents: 0, usedBytes: 65536, provisionedBytes: 1 << 30, fileBytes: 0, filesystemFreeBytes: 1 << 30, volumes: 2, snapshots: 1 },
      ],
    });
    expect(await screen.findByTestId('site-card-primary')).toHaveTextContent('connected');
    expect(screen.getByTestId('site-card-secondary')).toHaveTextContent('reconnecting');
    expect(await screen.findByText(/2 volumes, 1 snapshots/)).toBeInTheDocument();
  });

  it('shows the problem code when the site list fails', async () => {
    renderWithBackend(<SitesPage />, { 'GET /api/sites': [401, { problem: 'unauthenticated', message: 'the console API needs the bearer token' }] });
    expect(await screen.findByTestId('problem')).toHaveTextContent('unauthenticated');
  });
});
