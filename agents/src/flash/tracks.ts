import { ProblemError, type TrackMapQuery } from '@tandem/contract';
import { CHUNK_TRACKS, NO_EXTENT, type BitmapMeta, type VolumeMeta } from '../storage/metadata.ts';
import type { TrackRange } from './service.ts';

/**
 * Copied tracks of a flash pair, derived from the VTTs: a target track is
 * "not yet copied" exactly when it still points at the same extent as the
 * source's track (the target depends on the source's physical data). Every
 * other track is copied: background copy, a source write (redirected, the
 * old extent stays with the target), a target write, or both unallocated.
 * Derived, so it is exact and survives restarts and crashes for free.
 */

/** Tracks of `target` that still share their extent with `source`'s same track. */
export function sharedTracks(source: VolumeMeta, target: VolumeMeta): number {
  let shared = 0;
  for (const [index, chunk] of target.chunks) {
    // A chunk both volumes still hold as one object shares all its tracks.
    if (source.chunks.get(index) === chunk) shared += chunk.allocated;
    else shared += sharedIn(source, target, index * CHUNK_TRACKS, (index + 1) * CHUNK_TRACKS);
  }
  return shared;
}

/** Shared tracks in [start, end) (a bucket of the track map). */
function sharedIn(source: VolumeMeta, target: VolumeMeta, start: number, end: number): number {
  let shared = 0;
  visitShared(source, target, start, end, () => {
    shared++;
  });
  return shared;
}

/** The first track at or after `from` that `target` still shares with `source`, or -1. */
export function nextSharedTrack(source: VolumeMeta, target: VolumeMeta, from: number): number {
  let found = -1;
  visitShared(source, target, from, Math.min(source.trackCount, target.trackCount), (track) => {
    found = track;
    return true;
  });
  return found;
}

/**
 * Calls `visit` with each track in [start, end) that `target` still shares
 * with `source`, in order, a chunk at a time (chunks that either volume
 * lacks or holds empty have none); stops when `visit` returns true.
 */
function visitShared(
  source: VolumeMeta,
  target: VolumeMeta,
  start: number,
  end: number,
  visit: (track: number) => boolean | void,
): void {
  for (let track = start; track < end; ) {
    const index = Math.floor(track / CHUNK_TRACKS);
    const stop = Math.min(end, (index + 1) * CHUNK_TRACKS);
    const chunk = target.chunks.get(index);
    const other = source.chunks.get(index);
    if (chunk && other && chunk.allocated > 0 && other.allocated > 0) {
      const base = index * CHUNK_TRACKS;
      for (let t = track; t < stop; t++) {
        const extent = chunk.entries[t - base];
        if (extent !== NO_EXTENT && extent === other.entries[t - base] && visit(t)) return;
      }
    }
    track = stop;
  }
}

/**
 * Runs of tracks set in either bitmap (changed at the source or at the
 * target), merging runs closer than `gap` tracks: re-cloning a track that
 * changed on neither side changes nothing but its sharing, and fewer runs
 * keep the flash record small.
 */
export function changedRuns(bitmaps: Array<BitmapMeta | undefined>, trackCount: number, gap = 16): TrackRange[] {
  const present = bitmaps.filter((b): b is BitmapMeta => b !== undefined);
  const runs: TrackRange[] = [];
  if (present.length === 0) return runs;
  const bytes = Math.ceil(trackCount / 8);
  let runStart = -1;
  let runEnd = -1;
  for (let index = 0; index < bytes; index++) {
    let byte = 0;
    for (const bitmap of present) byte |= bitmap.bits[index] ?? 0;
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if ((byte & (1 << bit)) === 0) continue;
      const track = index * 8 + bit;
      if (track >= trackCount) break;
      if (runStart >= 0 && track <= runEnd + gap) runEnd = track + 1;
      else {
        if (runStart >= 0) runs.push({ start: runStart, count: runEnd - runStart });
        runStart = track;
        runEnd = track + 1;
      }
    }
  }
  if (runStart >= 0) runs.push({ start: runStart, count: runEnd - runStart });
  if (runs.length > 65_536) return changedRuns(bitmaps, trackCount, gap * 16);
  return runs;
}

/** `part` of `total` (tracks) in percent, rounded down to hundredths; 100 when there is nothing to copy. */
export function percentOf(part: number, total: number): number {
  return total === 0 ? 100 : Math.floor((part / total) * 10000) / 100;
}

/** Tracks set in a bitmap (0 when it is gone). */
export function setCount(bitmap: BitmapMeta | undefined): number {
  return bitmap?.setCount ?? 0;
}

/**
 * Copied tracks per bucket as runs `[repeat, copied]`, with the volume
 * track map's resolution rules (TrackMapQuery).
 */
export function copiedTrackMap(
  source: VolumeMeta,
  target: VolumeMeta,
  query: TrackMapQuery,
): { trackCount: number; start: number; count: number; bucketTracks: number; buckets: number; runs: Array<[number, number]> } {
  const trackCount = target.trackCount;
  const start = query.start;
  if (start >= trackCount) throw new ProblemError('out-of-range', `track ${start} is past the end (${trackCount} tracks)`);
  const count = Math.min(query.count ?? trackCount - start, trackCount - start);
  const bucketTracks = Math.max(1, Math.ceil(count / query.buckets));
  const buckets = Math.ceil(count / bucketTracks);
  const end = start + count;
  const runs: Array<[number, number]> = [];
  const emit = (repeat: number, copied: number) => {
    const last = runs[runs.length - 1];
    if (last && last[1] === copied) last[0] += repeat;
    else runs.push([repeat, copied]);
  };
  let bucketStart = start;
  while (bucketStart < end) {
    const bucketEnd = Math.min(end, bucketStart + bucketTracks);
    // Whole buckets where either side has no chunk are fully copied: one step.
    const index = Math.floor(bucketStart / CHUNK_TRACKS);
    if (!target.chunks.has(index) || !source.chunks.has(index)) {
      let until = Math.min(end, (index + 1) * CHUNK_TRACKS);
      for (let next = index + 1; until < end && (!target.chunks.has(next) || !source.chunks.has(next)); next++) {
        until = Math.min(end, (next + 1) * CHUNK_TRACKS);
      }
      const whole = Math.floor((until - bucketStart) / bucketTracks);
      if (whole > 0) {
        for (let b = 0; b < whole; b++) {
          const from = bucketStart + b * bucketTracks;
          emit(1, Math.min(bucketTracks, end - from));
        }
        bucketStart += whole * bucketTracks;
        continue;
      }
    }
    emit(1, bucketEnd - bucketStart - sharedIn(source, target, bucketStart, bucketEnd));
    bucketStart = bucketEnd;
  }
  return { trackCount, start, count, bucketTracks, buckets, runs };
}
