import { fireEvent, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { siteFixture, volumeFixture } from '../../../test/fixtures.ts';
import { VolumesPage } from './VolumesPage.tsx';

const volumes = {
  volumes: [volumeFixture('db', { snapshots: ['db.snap'], allocatedBytes: 1 << 20 }), volumeFixture('db.snap', { id: 2, kind: 'snapshot', source: 'db' })],
};

describe('VolumesPage', () => {
  it('lists volumes with snapshots under their source', async () => {
    renderWithBackend(<VolumesPage site={siteFixture()} />, { 'GET /api/sites/agent-1/volumes': [200, volumes] });
    const snapshotRow = await screen.findByTestId('volume-row-db.snap');
    expect(snapshotRow).toHaveTextContent('snapshot of db');
    expect(screen.getByTestId('volume-row-db')).toHaveTextContent('1 GiB');
    expect(screen.getByTestId('volume-row-db')).toHaveTextContent('1 MiB');
  });

  it('says how to start when a site has no volumes', async () => {
    renderWithBackend(<VolumesPage site={siteFixture()} />, { 'GET /api/sites/agent-1/volumes': [200, { volumes: [] }] });
    expect(await screen.findByTestId('volumes-empty')).toHaveTextContent('Create volume');
  });

  it('does not ask a disconnected site for volumes and says why', async () => {
    const calls: string[] = [];
    const site = siteFixture({ connection: { state: 'reconnecting', since: 'x', lastProblem: { problem: 'agent-unreachable', message: 'the connection was reset' }, nextAttemptAt: null } });
    renderWithBackend(<VolumesPage site={site} />, {}, calls);
    expect(await screen.findByText(/the connection was reset/)).toBeInTheDocument();
    expect(calls).toEqual([]);
    expect(screen.getByRole('button', { name: 'Create volume' })).toBeDisabled();
  });

  it('creates a volume from a human size and shows a refusal with its code', async () => {
    const calls: string[] = [];
    renderWithBackend(
      <VolumesPage site={siteFixture()} />,
      {
        'GET /api/sites/agent-1/volumes': [200, volumes],
        'POST /api/sites/agent-1/volumes': [409, { problem: 'already-exists', message: 'a volume named db already exists' }],
      },
      calls,
    );
    await screen.findByTestId('volume-row-db');
    fireEvent.click(screen.getByRole('button', { name: 'Create volume' }));
    const dialog = await screen.findByRole('dialog');
    fireEvent.change(within(dialog).getByLabelText(/Name/), { target: { value: 'db' } });
    fireEvent.change(within(dialog).getByLabelText(/Size/), { target: { value: '2G' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Create' }));
    expect(await within(dialog).findByTestId('problem')).toHaveTextContent('already-exists');
    expect(calls).toContain(`POST /api/sites/agent-1/volumes ${JSON.stringify({ name: 'db', sizeBytes: 2 * 1024 ** 3 })}`);
  });

  it('searches, filters by kind and sorts by a column, snapshots staying under their source', async () => {
    const many = {
      volumes: [
        volumeFixture('alpha', { id: 1, sizeBytes: 3 * 1024 ** 3, snapshots: ['alpha.snap'], createdAt: '2026-01-01T00:00:01.000Z' }),
        volumeFixture('alpha.snap', { id: 2, kind: 'snapshot', source: 'alpha', createdAt: '2026-01-01T00:00:02.000Z' }),
        volumeFixture('beta', { id: 3, sizeBytes: 1024 ** 3, createdAt: '2026-01-01T00:00:03.000Z' }),
        volumeFixture('gamma', { id: 4, sizeBytes: 2 * 1024 ** 3, createdAt: '2026-01-01T00:00:04.000Z' }),
      ],
    };
    renderWithBackend(<VolumesPage site={siteFixture()} />, { 'GET /api/sites/agent-1/volumes': [200, many] });
    await screen.findByTestId('volume-row-gamma');
    const shown = () => screen.queryAllByTestId(/^volume-row-/).map((row) => row.getAttribute('data-testid')!.replace('volume-row-', ''));
    expect(shown()).toEqual(['alpha', 'alpha.snap', 'beta', 'gamma']);
    expect(screen.getByTestId('volumes-count')).toHaveTextContent('4 in all');

    // Largest first: alpha (3 GiB) with its snapshot under it, gamma, beta.
    fireEvent.click(screen.getByRole('button', { name: 'Sort by size' }));
    expect(shown()).toEqual(['alpha', 'alpha.snap', 'gamma', 'beta']);
    expect(screen.getByRole('columnheader', { name: /Size/ }).getAttribute('aria-sort')).toBe('descending');
    fireEvent.click(screen.getByRole('button', { name: 'Sort by size' }));
    expect(shown()).toEqual(['beta', 'gamma', 'alpha', 'alpha.snap']);

    // A search for the snapshot keeps its source above it, so the lineage still reads.
    fireEvent.change(screen.getByLabelText('Search volumes by name'), { target: { value: 'SNAP' } });
    expect(shown()).toEqual(['alpha', 'alpha.snap']);
    expect(screen.getByTestId('volumes-count')).toHaveTextContent('2 of 4 shown');
    fireEvent.change(screen.getByLabelText('Search volumes by name'), { target: { value: 'zeta' } });
    expect(screen.getByTestId('volumes-no-match')).toBeInTheDocument();
    fireEvent.change(screen.getByLabelText('Search volumes by name'), { target: { value: '' } });

    fireEvent.click(screen.getByRole('radio', { name: 'Volumes' }));
    expect(shown()).toEqual(['beta', 'gamma', 'alpha']);
  });
});
