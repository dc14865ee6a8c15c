import { describe, expect, it } from 'vitest';
import type { TrackMap } from '@tandem/contract';
import { bucketsFor, cellState, clampView, expandRuns, gridFor, panView, zoomView } from './track-map-model.ts';

const map = (overrides: Partial<TrackMap>): TrackMap => ({
  volume: 'v',
  trackSize: 65536,
  trackCount: 10,
  start: 0,
  count: 10,
  bucketTracks: 1,
  buckets: 10,
  runs: [],
  ...overrides,
});

describe('expandRuns', () => {
  it('expands run-length runs into per-bucket counts', () => {
    const expanded = expandRuns(map({ runs: [[2, 1, 0], [3, 1, 1], [5, 0, 0]] }));
    expect([...expanded.allocated]).toEqual([1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
    expect([...expanded.shared]).toEqual([0, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
    expect([...expanded.tracks]).toEqual(Array(10).fill(1));
  });

  it('gives the last bucket only the tracks left', () => {
    const expanded = expandRuns(map({ trackCount: 10, count: 10, bucketTracks: 4, buckets: 3, runs: [[3, 2, 0]] }));
    expect([...expanded.tracks]).toEqual([4, 4, 2]);
  });

  it('ignores runs past the last bucket', () => {
    expect([...expandRuns(map({ buckets: 2, count: 2, runs: [[5, 1, 1]] })).allocated]).toEqual([1, 1]);
  });

  it('handles a 16M-track volume summarised in 8192 buckets without per-track work', () => {
    const trackCount = 16 * 1024 * 1024;
    const expanded = expandRuns(map({ trackCount, count: trackCount, bucketTracks: 2048, buckets: 8192, runs: [[8191, 0, 0], [1, 2048, 10]] }));
    expect(expanded.allocated[8191]).toBe(2048);
    expect(expanded.tracks.length).toBe(8192);
  });
});

describe('view arithmetic', () => {
  it('zooms around an anchor and stays inside the volume', () => {
    expect(zoomView({ start: 0, count: 1024 }, 0.5, 512, 1024)).toEqual({ start: 256, count: 512 });
    expect(zoomView({ start: 0, count: 1024 }, 0.5, 0, 1024)).toEqual({ start: 0, count: 512 });
    expect(zoomView({ start: 256, count: 512 }, 2, 512, 1024)).toEqual({ start: 0, count: 1024 });
    expect(zoomView({ start: 0, count: 16 }, 0.5, 8, 1024).count).toBe(16);
  });

  it('pans and clamps at both ends', () => {
    expect(panView({ start: 100, count: 100 }, -500, 1000)).toEqual({ start: 0, count: 100 });
    expect(panView({ start: 100, count: 100 }, 5000, 1000)).toEqual({ start: 900, count: 100 });
    expect(clampView({ start: 5, count: 50 }, 20)).toEqual({ start: 0, count: 20 });
  });

  it('asks for no more buckets than tracks shown', () => {
    expect(bucketsFor({ start: 0, count: 100 }, 8192)).toBe(100);
    expect(bucketsFor({ start: 0, count: 1 << 24 }, 8192)).toBe(8192);
  });

  it('lays cells out in rows', () => {
    expect(gridFor(1024)).toEqual({ columns: 128, rows: 8 });
    expect(gridFor(8192)).toEqual({ columns: 512, rows: 16 });
    expect(gridFor(5)).toEqual({ columns: 5, rows: 1 });
  });

  it('names a bucket by what it holds', () => {
    expect(cellState(4, 0, 0)).toBe('unallocated');
    expect(cellState(4, 4, 4)).toBe('shared');
    expect(cellState(4, 4, 0)).toBe('exclusive');
    expect(cellState(4, 2, 1)).toBe('mixed');
  });
});
