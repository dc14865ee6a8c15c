import { screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderWithBackend } from '../../../test/render.tsx';
import { pairFixture } from '../hooks/session-fixtures.test-helpers.ts';
import { PreflightSummary } from './PreflightSummary.tsx';

describe('PreflightSummary', () => {
  it('names the site holding each copy set of a multi-primary session', () => {
    const pairs = [pairFixture({ id: 'pa', h1Volume: 'a', h2Volume: 'a2' }), pairFixture({ id: 'pb', h1Volume: 'b', h2Volume: 'b2', primarySite: 'bravo' })];
    const preflight = {
      session: 'mp',
      pairs: [
        { pair: 'pa', h1Volume: 'a', targetChangedTracks: 6, outOfSyncTracks: 0, candidateTracks: 6, differingTracks: 4, codesComputed: 12 },
        { pair: 'pb', h1Volume: 'b', primarySite: 'bravo', targetChangedTracks: 3, outOfSyncTracks: 1, candidateTracks: 4, differingTracks: 4, codesComputed: 8 },
      ],
      tracksToCopy: 8,
      bytesToCopy: 8 * 65536,
      estimatedSeconds: 0,
      verifyCodes: true,
      fullCompare: false,
    };
    renderWithBackend(<PreflightSummary preflight={preflight} pairs={pairs} h1Site="alpha" />, {});
    expect(screen.getByTestId('preflight-bitmap-tracks')).toHaveTextContent('10');
    expect(screen.getByTestId('preflight-code-tracks')).toHaveTextContent('8');
    expect(within(screen.getByTestId('preflight-pair-pb')).getByTestId('preflight-primary-site')).toHaveTextContent('bravo');
    expect(within(screen.getByTestId('preflight-pair-pa')).getByTestId('preflight-primary-site')).toHaveTextContent('alpha');
    expect(screen.getByTestId('preflight-tracks-to-copy')).toHaveTextContent('8 tracks to copy (512 KiB), to 2 sites (alpha, bravo)');
    expect(screen.getByTestId('preflight-total-to-copy')).toHaveTextContent('8');
  });

  it('lists per copy set what it copies: tracks by bitmap and by codes, bytes and the estimate, with totals', () => {
    const pairs = [pairFixture({ id: 'pa', h1Volume: 'a', h2Volume: 'a2' }), pairFixture({ id: 'pb', h1Volume: 'b', h2Volume: 'b2', primarySite: 'bravo' })];
    const preflight = {
      session: 'mp',
      pairs: [
        { pair: 'pa', h1Volume: 'a', targetChangedTracks: 5, outOfSyncTracks: 0, candidateTracks: 5, differingTracks: 5, codesComputed: 10, tracksToCopy: 5, bytesToCopy: 5 * 65536, estimatedSeconds: 1.5 },
        { pair: 'pb', h1Volume: 'b', primarySite: 'bravo', targetChangedTracks: 2, outOfSyncTracks: 0, candidateTracks: 2, differingTracks: 1, codesComputed: 4, tracksToCopy: 1, bytesToCopy: 65536, estimatedSeconds: 0.5 },
      ],
      tracksToCopy: 6,
      bytesToCopy: 6 * 65536,
      estimatedSeconds: 2,
      verifyCodes: true,
      fullCompare: false,
    };
    renderWithBackend(<PreflightSummary preflight={preflight} pairs={pairs} h1Site="alpha" />, {});
    const pb = within(screen.getByTestId('preflight-pair-pb'));
    expect(pb.getByTestId('preflight-primary-site')).toHaveTextContent('bravo');
    expect(pb.getByTestId('preflight-pair-bitmap')).toHaveTextContent('2');
    expect(pb.getByTestId('preflight-pair-codes')).toHaveTextContent('1');
    expect(pb.getByTestId('preflight-pair-to-copy')).toHaveTextContent('1');
    expect(pb.getByTestId('preflight-pair-bytes')).toHaveTextContent('64 KiB');
    expect(within(screen.getByTestId('preflight-pair-pa')).getByTestId('preflight-pair-bytes')).toHaveTextContent('320 KiB');
    expect(screen.getByTestId('preflight-total')).toHaveTextContent(/Total \(2 copy sets\)/);
    expect(screen.getByTestId('preflight-total-to-copy')).toHaveTextContent('6');
    expect(screen.queryByText(/only the totals are known/)).toBeNull();
  });
});
