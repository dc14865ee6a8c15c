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
    renderWithBackend(<PreflightSummary preflight={preflight} pairs={pairs} />, {});
    expect(screen.getByTestId('preflight-bitmap-tracks')).toHaveTextContent('10');
    expect(screen.getByTestId('preflight-code-tracks')).toHaveTextContent('8');
    expect(within(screen.getByTestId('preflight-pair-pb')).getByTestId('preflight-primary-site')).toHaveTextContent('primary at bravo');
    expect(within(screen.getByTestId('preflight-pair-pa')).queryByTestId('preflight-primary-site')).toBeNull();
  });
});
