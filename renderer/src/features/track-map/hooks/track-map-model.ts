import type { TrackMap } from '@tandem/contract';

/** The tracks on screen: [start, start + count). */
export interface TrackMapView {
  start: number;
  count: number;
}

/** Per bucket: tracks covered, allocated, shared. */
export interface ExpandedMap {
  start: number;
  bucketTracks: number;
  tracks: Uint32Array;
  allocated: Uint32Array;
  shared: Uint32Array;
}

/** Expands the agent's run-length runs `[repeat, allocated, shared]` into per-bucket arrays. */
export function expandRuns(map: TrackMap): ExpandedMap {
  const allocated = new Uint32Array(map.buckets);
  const shared = new Uint32Array(map.buckets);
  const tracks = new Uint32Array(map.buckets);
  let index = 0;
  for (const [repeat, allocatedCount, sharedCount] of map.runs) {
    const end = Math.min(map.buckets, index + repeat);
    allocated.fill(allocatedCount, index, end);
    shared.fill(sharedCount, index, end);
    index = end;
  }
  for (let bucket = 0; bucket < map.buckets; bucket++) {
    const first = bucket * map.bucketTracks;
    tracks[bucket] = Math.max(0, Math.min(map.bucketTracks, map.count - first));
  }
  return { start: map.start, bucketTracks: map.bucketTracks, tracks, allocated, shared };
}

/** The whole volume. */
export function fullView(trackCount: number): TrackMapView {
  return { start: 0, count: Math.max(1, trackCount) };
}

const minimumCount = 16;

/** Zooms by `factor` (<1 in, >1 out) keeping `anchorTrack` where it is on screen; clamped to the volume. */
export function zoomView(view: TrackMapView, factor: number, anchorTrack: number, trackCount: number): TrackMapView {
  const count = Math.round(Math.min(trackCount, Math.max(Math.min(minimumCount, trackCount), view.count * factor)));
  const anchorShare = view.count > 0 ? (anchorTrack - view.start) / view.count : 0.5;
  const start = Math.round(anchorTrack - anchorShare * count);
  return clampView({ start, count }, trackCount);
}

/** Moves the view by `tracks` (negative = towards the start). */
export function panView(view: TrackMapView, tracks: number, trackCount: number): TrackMapView {
  return clampView({ start: Math.round(view.start + tracks), count: view.count }, trackCount);
}

export function clampView(view: TrackMapView, trackCount: number): TrackMapView {
  const count = Math.max(1, Math.min(view.count, trackCount));
  const start = Math.max(0, Math.min(view.start, trackCount - count));
  return { start, count };
}

/** How many buckets to ask for: one per cell drawn, never more than the tracks shown. */
export function bucketsFor(view: TrackMapView, cells: number): number {
  return Math.max(1, Math.min(cells, view.count));
}

/** Grid layout of the cells: columns and rows for `cells` buckets. */
export function gridFor(cells: number): { columns: number; rows: number } {
  const columns = cells <= 4096 ? Math.min(cells, 128) : 512;
  return { columns, rows: Math.ceil(cells / columns) };
}

export type CellState = 'unallocated' | 'exclusive' | 'shared' | 'mixed';

/** What one bucket mostly is, for hover text and tests. */
export function cellState(tracks: number, allocated: number, shared: number): CellState {
  if (allocated === 0) return 'unallocated';
  if (shared === tracks) return 'shared';
  if (shared === 0 && allocated === tracks) return 'exclusive';
  return 'mixed';
}
