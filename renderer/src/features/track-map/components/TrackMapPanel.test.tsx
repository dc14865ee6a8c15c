import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { volumeFixture } from '../../../test/fixtures.ts';
import { TrackMapPanel } from './TrackMapPanel.tsx';

describe('TrackMapPanel', () => {
  it('asks for one bucket per cell and sums what it shows', async () => {
    const calls: string[] = [];
    const snapshot = volumeFixture('v.snap', { kind: 'snapshot', source: 'v', trackCount: 16 * 1024 * 1024, sizeBytes: 1024 ** 4 });
    renderWithBackend(
      <TrackMapPanel siteId="s1" volume={snapshot} />,
      {
        'GET /api/sites/s1/volumes/v.snap/track-map': [
          200,
          { volume: 'v.snap', trackSize: 65536, trackCount: 16777216, start: 0, count: 16777216, bucketTracks: 2048, buckets: 8192, runs: [[1, 2048, 2000], [8191, 0, 0]] },
        ],
      },
      calls,
    );
    const totals = await screen.findByTestId('track-map-totals');
    expect(totals.getAttribute('data-allocated')).toBe('2048');
    expect(totals.getAttribute('data-shared')).toBe('2000');
    expect(totals.getAttribute('data-exclusive')).toBe('48');
    expect(screen.getByTestId('lineage')).toHaveTextContent('snapshot of v');
    expect(screen.getByTestId('track-map-view')).toHaveTextContent('2,048 tracks per cell');
    expect(calls).toEqual(['GET /api/sites/s1/volumes/v.snap/track-map?start=0&count=16777216&buckets=8192']);
  });

  it('shows a failed map with its problem code', async () => {
    renderWithBackend(<TrackMapPanel siteId="s1" volume={volumeFixture('gone')} />, {
      'GET /api/sites/s1/volumes/gone/track-map': [404, { problem: 'not-found', message: 'no volume named gone' }],
    });
    expect(await screen.findByTestId('problem')).toHaveTextContent('not-found');
  });
});
