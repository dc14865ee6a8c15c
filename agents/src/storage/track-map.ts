import { ProblemError, type TrackDetail, type TrackMap, type TrackMapQuery } from '@tandem/contract';
import { CHUNK_TRACKS, NO_EXTENT, type MetadataState, type VolumeMeta } from './metadata.ts';
import { entryShared } from './space.ts';

/**
 * The VTT as run-length summaries at the resolution asked for: tracks cut
 * into buckets, each bucket reduced to (allocated, shared) counts, equal
 * neighbouring buckets merged into one run. Absent chunks cost one step, so
 * a 16M-track sparse volume summarises in well under a millisecond.
 */
export function buildTrackMap(
  state: MetadataState,
  volume: VolumeMeta,
  name: string,
  query: TrackMapQuery,
): TrackMap {
  const start = query.start;
  if (start >= volume.trackCount) {
    throw new ProblemError('out-of-range', `track ${start} is past the end of ${name} (${volume.trackCount} tracks)`);
  }
  const count = Math.min(query.count ?? volume.trackCount - start, volume.trackCount - start);
  const bucketTracks = Math.max(1, Math.ceil(count / query.buckets));
  const buckets = Math.ceil(count / bucketTracks);
  const end = start + count;
  const runs: Array<[number, number, number]> = [];
  const emit = (repeat: number, allocated: number, shared: number) => {
    const last = runs[runs.length - 1];
    if (last && last[1] === allocated && last[2] === shared) last[0] += repeat;
    else runs.push([repeat, allocated, shared]);
  };
  let bucketStart = start;
  while (bucketStart < end) {
    const bucketEnd = Math.min(end, bucketStart + bucketTracks);
    // Whole empty buckets across absent chunks go in one step.
    const chunkIndex = Math.floor(bucketStart / CHUNK_TRACKS);
    if (!volume.chunks.has(chunkIndex)) {
      const emptyUntil = Math.min(end, nextPresentChunkStart(volume, chunkIndex, end));
      const wholeBuckets = Math.floor((emptyUntil - bucketStart) / bucketTracks);
      if (wholeBuckets > 0) {
        emit(wholeBuckets, 0, 0);
        bucketStart += wholeBuckets * bucketTracks;
        continue;
      }
    }
    let allocated = 0;
    let shared = 0;
    let track = bucketStart;
    while (track < bucketEnd) {
      const index = Math.floor(track / CHUNK_TRACKS);
      const stop = Math.min(bucketEnd, (index + 1) * CHUNK_TRACKS);
      const chunk = volume.chunks.get(index);
      if (chunk) {
        for (let t = track; t < stop; t++) {
          const extent = chunk.entries[t - index * CHUNK_TRACKS];
          if (extent === NO_EXTENT) continue;
          allocated++;
          if (entryShared(state, chunk, extent)) shared++;
        }
      }
      track = stop;
    }
    emit(1, allocated, shared);
    bucketStart = bucketEnd;
  }
  return { volume: name, trackSize: state.trackSize, trackCount: volume.trackCount, start, count, bucketTracks, buckets, runs };
}

function nextPresentChunkStart(volume: VolumeMeta, fromChunk: number, endTrack: number): number {
  const lastChunk = Math.floor((endTrack - 1) / CHUNK_TRACKS);
  for (let index = fromChunk; index <= lastChunk; index++) {
    if (volume.chunks.has(index)) return index * CHUNK_TRACKS;
  }
  return endTrack;
}

/** One track in detail, naming the other volumes that reference its extent. */
export function describeTrack(
  state: MetadataState,
  volume: VolumeMeta,
  name: string,
  track: number,
  others: Array<{ name: string; volume: VolumeMeta }>,
): TrackDetail {
  if (!Number.isSafeInteger(track) || track < 0 || track >= volume.trackCount) {
    throw new ProblemError('out-of-range', `${name} has tracks 0 to ${volume.trackCount - 1}; there is no track ${track}`);
  }
  const extent = state.lookup(volume, track);
  const offset = track * state.trackSize;
  if (extent === NO_EXTENT) {
    return { volume: name, track, offset, state: 'unallocated', extent: null, references: 0, sharedWith: [] };
  }
  const sharedWith = others.filter((o) => track < o.volume.trackCount && state.lookup(o.volume, track) === extent).map((o) => o.name);
  const chunk = volume.chunks.get(Math.floor(track / CHUNK_TRACKS))!;
  const shared = entryShared(state, chunk, extent);
  return {
    volume: name,
    track,
    offset,
    state: shared ? 'shared' : 'exclusive',
    extent,
    references: sharedWith.length + 1,
    sharedWith,
  };
}
