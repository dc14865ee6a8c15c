import { describe, expect, it } from 'vitest';
import { copiedTotals, expandFlashRuns } from './flash-track-map.ts';

describe('expandFlashRuns', () => {
  it('expands [repeat, copied] runs into buckets, the last one short', () => {
    const map = expandFlashRuns({ session: 's', pair: 'p', target: 't', trackSize: 65536, trackCount: 10, start: 0, count: 10, bucketTracks: 4, buckets: 3, runs: [[1, 4], [1, 1], [1, 2]] });
    expect([...map.tracks]).toEqual([4, 4, 2]);
    expect([...map.allocated]).toEqual([4, 1, 2]);
    expect([...map.shared]).toEqual([0, 0, 0]);
    expect(copiedTotals(map)).toEqual({ copied: 7, notCopied: 3 });
  });
});
