import { CHUNK_TRACKS, NO_EXTENT, type Chunk, type MetadataState, type VolumeMeta } from './metadata.ts';

/** Space figures of one volume, in tracks. */
export interface VolumeSpace {
  allocatedTracks: number;
  /** Allocated tracks whose extent another volume also references. */
  sharedTracks: number;
}

const cache = new WeakMap<VolumeMeta, { version: number; space: VolumeSpace }>();

/** True when another volume can reach this entry's extent. */
export function entryShared(state: MetadataState, chunk: Chunk, extent: number): boolean {
  return chunk.refs > 1 || state.refcounts[extent] > 1;
}

/** Allocated and shared tracks of a volume; cached until the metadata changes. */
export function volumeSpace(state: MetadataState, volume: VolumeMeta): VolumeSpace {
  const cached = cache.get(volume);
  if (cached && cached.version === state.version) return cached.space;
  let allocatedTracks = 0;
  let sharedTracks = 0;
  for (const chunk of volume.chunks.values()) {
    allocatedTracks += chunk.allocated;
    if (chunk.refs > 1) {
      sharedTracks += chunk.allocated;
      continue;
    }
    for (let slot = 0; slot < CHUNK_TRACKS; slot++) {
      const extent = chunk.entries[slot];
      if (extent !== NO_EXTENT && state.refcounts[extent] > 1) sharedTracks++;
    }
  }
  const space = { allocatedTracks, sharedTracks };
  cache.set(volume, { version: state.version, space });
  return space;
}

/** Extents reachable from more than one volume (through a shared chunk or a refcount above one). */
export function poolSharedExtents(state: MetadataState): number {
  const shared = new Set<number>();
  const seen = new Set<Chunk>();
  for (const volume of state.volumes.values()) {
    for (const chunk of volume.chunks.values()) {
      if (seen.has(chunk)) continue;
      seen.add(chunk);
      for (let slot = 0; slot < CHUNK_TRACKS; slot++) {
        const extent = chunk.entries[slot];
        if (extent !== NO_EXTENT && entryShared(state, chunk, extent)) shared.add(extent);
      }
    }
  }
  return shared.size;
}
