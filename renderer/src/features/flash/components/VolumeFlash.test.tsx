import { fireEvent, screen, within } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { siteFixture, volumeFixture } from '../../../test/fixtures.ts';
import { renderWithBackend } from '../../../test/render.tsx';
import { useUiStore } from '../../../app/ui-store.ts';
import { VolumesPage } from '../../volumes/components/VolumesPage.tsx';
import { flashPairFixture, flashSessionFixture } from '../hooks/flash-fixtures.test-helpers.ts';
import { useFlashUi } from '../hooks/flash-ui-store.ts';

const site = siteFixture();
const gib = 1024 ** 3;
const nightly = flashSessionFixture({ pairs: [flashPairFixture({ source: 'db', target: 'db-pit' })] });

function routes() {
  return {
    'GET /api/sites': [200, { sites: [site] }],
    'GET /api/sites/agent-1/volumes': [200, { volumes: [volumeFixture('db', { sizeBytes: gib }), volumeFixture('db-pit', { sizeBytes: gib }), volumeFixture('spare', { sizeBytes: gib })] }],
    'GET /api/sites/agent-1/flash-sessions': [200, { sessions: [nightly] }],
    'GET /api/sites/agent-1/sessions': [200, { sessions: [] }],
    'GET /api/sites/agent-1/volumes/db-pit/track-map': [200, { volume: 'db-pit', trackSize: 65536, trackCount: 16384, start: 0, count: 16384, bucketTracks: 4, buckets: 4096, runs: [[4096, 0, 0]] }],
    'GET /api/sites/agent-1/flash-sessions/nightly/pairs/fp1/track-map': [
      200,
      { session: 'nightly', pair: 'fp1', target: 'db-pit', trackSize: 65536, trackCount: 16384, start: 0, count: 16384, bucketTracks: 4, buckets: 4096, runs: [[1024, 4], [3072, 0]] },
    ],
  } as Record<string, [number, unknown]>;
}

describe('flash copy on the volume screen', () => {
  beforeEach(() => {
    useUiStore.setState({ selectedVolume: null });
    useFlashUi.setState({ wizardOpen: false, startSiteId: null, startSource: null });
  });

  it('marks flash sources and targets, and shows a target’s relationship with its copied tracks', async () => {
    renderWithBackend(<VolumesPage site={site} />, routes());
    expect(await screen.findByText('flash source → db-pit')).toBeInTheDocument();
    expect(within(screen.getByTestId('volume-row-db-pit')).getByTestId('flash-role-target')).toHaveTextContent('flash target ← db');
    expect(within(screen.getByTestId('volume-row-spare')).queryByTestId('flash-role-target')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Show track map of db-pit' }));
    const panel = await screen.findByTestId('volume-flash');
    expect(panel).toHaveTextContent('Session nightly: db-pit is the target of db');
    expect(within(panel).getByTestId('flash-state')).toHaveTextContent('Copying');
    expect(await within(panel).findByTestId('flash-track-totals')).toHaveTextContent('4,096 tracks copied, 12,288 not yet copied');
    // A target is not flashed further while its relationship exists.
    expect(within(panel).queryByRole('button', { name: 'Flash copy db-pit…' })).toBeNull();
  });

  it('opens the wizard from a volume’s menu with that volume as the source', async () => {
    renderWithBackend(<VolumesPage site={site} />, routes());
    await screen.findByText('flash source → db-pit');
    fireEvent.click(screen.getByRole('button', { name: 'Actions for spare' }));
    fireEvent.click(await screen.findByRole('menuitem', { name: 'Flash copy…' }));
    const dialog = await screen.findByRole('dialog', { name: 'Flash copy' });
    const target = await within(dialog).findByLabelText('Target volume');
    // db and db-pit are in a relationship already; spare itself is the source: nothing is left.
    await expect.poll(() => within(dialog).queryByTestId('flash-no-target')).not.toBeNull();
    expect([...(target as HTMLSelectElement).options].map((option) => option.value)).toEqual(['']);
    expect(within(dialog).getByTestId('flash-target-refused')).toHaveTextContent('db (the source of db-pit in flash session nightly); db-pit (already the target of db in flash session nightly)');
    expect(dialog).toHaveTextContent('Targets for spare at primary');
  });
});
