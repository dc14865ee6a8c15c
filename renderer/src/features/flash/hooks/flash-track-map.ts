import type { FlashTrackMap } from '@tandem/contract';
import type { ExpandedMap } from '../../track-map/hooks/track-map-model.ts';

/**
 * Expands the agent's runs `[repeat, copied]` into the track map's per-bucket
 * arrays, copied tracks standing where allocated ones do on a volume map (so
 * the same canvas draws it), nothing shared.
 */
export function expandFlashRuns(map: FlashTrackMap): ExpandedMap {
  const copied = new Uint32Array(map.buckets);
  const tracks = new Uint32Array(map.buckets);
  let index = 0;
  for (const [repeat, copiedCount] of map.runs) {
    const end = Math.min(map.buckets, index + repeat);
    copied.fill(copiedCount, index, end);
    index = end;
  }
  for (let bucket = 0; bucket < map.buckets; bucket++) {
    tracks[bucket] = Math.max(0, Math.min(map.bucketTracks, map.count - bucket * map.bucketTracks));
  }
  return { start: map.start, bucketTracks: map.bucketTracks, tracks, allocated: copied, shared: new Uint32Array(map.buckets) };
}

/** Copied and not-yet-copied tracks in the view. */
export function copiedTotals(map: ExpandedMap): { copied: number; notCopied: number } {
  let copied = 0;
  let tracks = 0;
  for (let bucket = 0; bucket < map.tracks.length; bucket++) {
    copied += Math.min(map.allocated[bucket], map.tracks[bucket]);
    tracks += map.tracks[bucket];
  }
  return { copied, notCopied: tracks - copied };
}

/** Canvas colours: copied tracks green, not-yet-copied ones a muted grey (they still read the source's point in time). */
export function flashMapColors(scheme: 'light' | 'dark') {
  return scheme === 'dark' ? { exclusive: '#51cf66', unallocated: '#3b3d44' } : { exclusive: '#2f9e44', unallocated: '#dee2e6' };
}
