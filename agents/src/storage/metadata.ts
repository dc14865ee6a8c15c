/**
 * The engine's metadata in memory: per volume a virtual track table (VTT)
 * cut into chunks, and per extent a reference count.
 *
 * Two levels of sharing make snapshots flat in volume size: a snapshot
 * shares the source's chunks (chunk.refs counts the volumes pointing at a
 * chunk) and an extent's refcount counts the chunks pointing at it. A write
 * into a shared chunk first gives the volume its own copy of that chunk.
 *
 * Every mutation here is deterministic and is driven by a WAL record, so the
 * daemon (live) and recovery (replay) run the same code and reach the same
 * state. What may only take effect once the record is durable (an extent or
 * chunk becoming exclusive, an extent becoming free) is reported to the
 * `MetadataListener` so the engine can pin it until the commit.
 */

import type { CdpJournalMeta } from './cdp-meta.ts';

export const CHUNK_TRACKS = 4096;
export const CHUNK_SHIFT = 12;
export const NO_EXTENT = 0xffffffff;

export class Chunk {
  readonly entries: Uint32Array;
  /** Volumes whose VTT points at this chunk. */
  refs = 1;
  /** Entries that hold an extent. */
  allocated = 0;

  constructor(entries?: Uint32Array) {
    this.entries = entries ?? new Uint32Array(CHUNK_TRACKS).fill(NO_EXTENT);
  }
}

export interface VolumeMeta {
  id: number;
  sizeBytes: number;
  trackCount: number;
  chunks: Map<number, Chunk>;
}

/**
 * A persistent track bitmap of one volume (out-of-sync and target-changed
 * bitmaps of mirror pairs): one bit per track, grown with the volume.
 */
export interface BitmapMeta {
  id: number;
  volume: number;
  bits: Uint8Array;
  /** Bits set. */
  setCount: number;
}

/** Told about reference drops so the engine can defer their effect until durable. */
export interface MetadataListener {
  /** An extent's refcount dropped (it may now look exclusive, or be free at 0). */
  extentDereferenced(extent: number, remaining: number): void;
  /** A chunk lost a volume (it may now look exclusive). */
  chunkDereferenced(chunk: Chunk): void;
  /** An extent gained its first reference. */
  extentReferenced(extent: number): void;
}

const silentListener: MetadataListener = {
  extentDereferenced() {},
  chunkDereferenced() {},
  extentReferenced() {},
};

export class MetadataState {
  readonly trackSize: number;
  readonly volumes = new Map<number, VolumeMeta>();
  readonly bitmaps = new Map<number, BitmapMeta>();
  /** CDP journals (cdp-meta.ts): their entries hold extents, counted in refcounts. */
  readonly journals = new Map<number, CdpJournalMeta>();
  /** refcounts[e] = chunks (and CDP journal entries) referencing extent e. Grows on demand. */
  refcounts = new Uint32Array(1024);
  /** Extents with a refcount above zero. */
  usedExtents = 0;
  /** Bumped by every mutation; lets callers cache derived figures. */
  version = 0;
  listener: MetadataListener = silentListener;

  constructor(trackSize: number) {
    this.trackSize = trackSize;
  }

  trackCountFor(sizeBytes: number): number {
    return Math.ceil(sizeBytes / this.trackSize);
  }

  volume(id: number): VolumeMeta {
    const volume = this.volumes.get(id);
    if (!volume) throw new Error(`metadata: no volume ${id}`);
    return volume;
  }

  /** The extent behind a track, or NO_EXTENT. */
  lookup(volume: VolumeMeta, track: number): number {
    const chunk = volume.chunks.get(Math.floor(track / CHUNK_TRACKS));
    return chunk ? chunk.entries[track % CHUNK_TRACKS] : NO_EXTENT;
  }

  ensureRefcountCapacity(extent: number): void {
    if (extent < this.refcounts.length) return;
    let length = this.refcounts.length;
    while (length <= extent) length *= 2;
    const grown = new Uint32Array(length);
    grown.set(this.refcounts);
    this.refcounts = grown;
  }

  // --- mutations (one per WAL record type) ---

  createVolume(id: number, sizeBytes: number): void {
    if (this.volumes.has(id)) throw new Error(`metadata: volume ${id} exists`);
    this.volumes.set(id, { id, sizeBytes, trackCount: this.trackCountFor(sizeBytes), chunks: new Map() });
    this.version++;
  }

  resizeVolume(id: number, sizeBytes: number): void {
    const volume = this.volume(id);
    const trackCount = this.trackCountFor(sizeBytes);
    if (trackCount < volume.trackCount) {
      // Shrinking is refused by the engine; replay of an old format would land here.
      throw new Error(`metadata: volume ${id} cannot shrink`);
    }
    volume.sizeBytes = sizeBytes;
    volume.trackCount = trackCount;
    for (const bitmap of this.bitmaps.values()) {
      if (bitmap.volume !== id || bitmap.bits.length * 8 >= trackCount) continue;
      const grown = new Uint8Array(Math.ceil(trackCount / 8));
      grown.set(bitmap.bits);
      bitmap.bits = grown;
    }
    this.version++;
  }

  deleteVolume(id: number): void {
    const volume = this.volume(id);
    for (const chunk of volume.chunks.values()) this.dereferenceChunk(chunk);
    for (const bitmap of [...this.bitmaps.values()]) if (bitmap.volume === id) this.bitmaps.delete(bitmap.id);
    this.volumes.delete(id);
    this.version++;
  }

  snapshotVolume(sourceId: number, targetId: number): void {
    const source = this.volume(sourceId);
    if (this.volumes.has(targetId)) throw new Error(`metadata: volume ${targetId} exists`);
    const chunks = new Map<number, Chunk>();
    for (const [index, chunk] of source.chunks) {
      chunk.refs++;
      chunks.set(index, chunk);
    }
    this.volumes.set(targetId, { id: targetId, sizeBytes: source.sizeBytes, trackCount: source.trackCount, chunks });
    this.version++;
  }

  /** Points a track at an extent (the extent's data is already written). */
  mapTrack(id: number, track: number, extent: number): void {
    const volume = this.volume(id);
    if (track >= volume.trackCount) throw new Error(`metadata: track ${track} past the end of volume ${id}`);
    const chunk = this.ownChunk(volume, Math.floor(track / CHUNK_TRACKS), true)!;
    const slot = track % CHUNK_TRACKS;
    const previous = chunk.entries[slot];
    if (previous === extent) return;
    this.reference(extent);
    chunk.entries[slot] = extent;
    if (previous === NO_EXTENT) chunk.allocated++;
    else this.dereference(previous);
    this.version++;
  }

  /** Releases a run of tracks (trim). */
  unmapTracks(id: number, track: number, count: number): void {
    const volume = this.volume(id);
    const end = Math.min(track + count, volume.trackCount);
    let current = track;
    while (current < end) {
      const chunkIndex = Math.floor(current / CHUNK_TRACKS);
      const chunkEnd = Math.min(end, (chunkIndex + 1) * CHUNK_TRACKS);
      const existing = volume.chunks.get(chunkIndex);
      if (existing && chunkHasAllocation(existing, current % CHUNK_TRACKS, chunkEnd - chunkIndex * CHUNK_TRACKS)) {
        const chunk = this.ownChunk(volume, chunkIndex, false)!;
        for (let t = current; t < chunkEnd; t++) {
          const slot = t % CHUNK_TRACKS;
          const extent = chunk.entries[slot];
          if (extent === NO_EXTENT) continue;
          chunk.entries[slot] = NO_EXTENT;
          chunk.allocated--;
          this.dereference(extent);
        }
        if (chunk.allocated === 0) {
          volume.chunks.delete(chunkIndex);
          // A private empty chunk references nothing; dropping it needs no pin.
        }
      }
      current = chunkEnd;
    }
    this.version++;
  }

  /**
   * Flash copy: makes tracks [track, track+count) of the target point at
   * the source's extents (no data moved). Whole chunks are shared (O(1) per
   * chunk, as a snapshot does), partial ones entry by entry. The target's
   * previous references are dropped (pinned by the listener until durable).
   * The target keeps its VolumeMeta object (devices hold it).
   */
  cloneTracks(sourceId: number, targetId: number, track: number, count: number): void {
    if (sourceId === targetId) throw new Error(`metadata: cannot clone volume ${sourceId} onto itself`);
    const source = this.volume(sourceId);
    const target = this.volume(targetId);
    const end = Math.min(track + count, source.trackCount, target.trackCount);
    const sameSize = source.trackCount === target.trackCount;
    let current = track;
    while (current < end) {
      const index = Math.floor(current / CHUNK_TRACKS);
      const chunkStart = index * CHUNK_TRACKS;
      const chunkEnd = Math.min(end, chunkStart + CHUNK_TRACKS);
      const from = source.chunks.get(index);
      const existing = target.chunks.get(index);
      if (from === existing) {
        current = chunkEnd;
        continue;
      }
      const whole = current === chunkStart && (chunkEnd === chunkStart + CHUNK_TRACKS || (sameSize && chunkEnd === source.trackCount));
      if (whole) {
        if (from) {
          from.refs++;
          target.chunks.set(index, from);
        } else {
          target.chunks.delete(index);
        }
        if (existing) this.dereferenceChunk(existing);
        current = chunkEnd;
        continue;
      }
      const fromSlot = current - chunkStart;
      const toSlot = chunkEnd - chunkStart;
      if (!from && (!existing || !chunkHasAllocation(existing, fromSlot, toSlot))) {
        current = chunkEnd;
        continue;
      }
      const chunk = this.ownChunk(target, index, true)!;
      for (let slot = fromSlot; slot < toSlot; slot++) {
        const extent = from ? from.entries[slot] : NO_EXTENT;
        const previous = chunk.entries[slot];
        if (previous === extent) continue;
        if (extent !== NO_EXTENT) this.reference(extent);
        chunk.entries[slot] = extent;
        if (previous === NO_EXTENT) chunk.allocated++;
        else this.dereference(previous);
        if (extent === NO_EXTENT) chunk.allocated--;
      }
      // A private empty chunk references nothing; dropping it needs no pin.
      if (chunk.allocated === 0) target.chunks.delete(index);
      current = chunkEnd;
    }
    this.version++;
  }

  // --- bitmaps ---

  createBitmap(id: number, volumeId: number, allSet: boolean): void {
    const volume = this.volume(volumeId);
    if (this.bitmaps.has(id)) throw new Error(`metadata: bitmap ${id} exists`);
    const bitmap: BitmapMeta = { id, volume: volumeId, bits: new Uint8Array(Math.ceil(volume.trackCount / 8)), setCount: 0 };
    this.bitmaps.set(id, bitmap);
    if (allSet) this.setBits(id, 0, volume.trackCount);
    this.version++;
  }

  deleteBitmap(id: number): void {
    this.bitmaps.delete(id);
    this.version++;
  }

  bitmap(id: number): BitmapMeta {
    const bitmap = this.bitmaps.get(id);
    if (!bitmap) throw new Error(`metadata: no bitmap ${id}`);
    return bitmap;
  }

  setBits(id: number, start: number, count: number): void {
    const bitmap = this.bitmap(id);
    const end = Math.min(start + count, this.volume(bitmap.volume).trackCount);
    for (let track = start; track < end; track++) {
      const mask = 1 << (track & 7);
      const index = track >>> 3;
      if ((bitmap.bits[index] & mask) === 0) {
        bitmap.bits[index] |= mask;
        bitmap.setCount++;
      }
    }
  }

  clearBits(id: number, start: number, count: number): void {
    const bitmap = this.bitmap(id);
    const end = Math.min(start + count, bitmap.bits.length * 8);
    for (let track = start; track < end; track++) {
      const mask = 1 << (track & 7);
      const index = track >>> 3;
      if ((bitmap.bits[index] & mask) !== 0) {
        bitmap.bits[index] &= ~mask;
        bitmap.setCount--;
      }
    }
  }

  clearAllBits(id: number): void {
    const bitmap = this.bitmap(id);
    bitmap.bits.fill(0);
    bitmap.setCount = 0;
    this.version++;
  }

  /** Sets in `target` every bit set in `source` (bitmaps of volumes of equal size). */
  mergeBitmap(target: number, source: number): void {
    const into = this.bitmap(target);
    const from = this.bitmap(source);
    const length = Math.min(into.bits.length, from.bits.length);
    let count = 0;
    for (let index = 0; index < into.bits.length; index++) {
      if (index < length) into.bits[index] |= from.bits[index];
      count += popcount8(into.bits[index]);
    }
    into.setCount = count;
  }

  // --- reference counting ---

  /**
   * Gives the volume a chunk of its own at `index`: creates it when absent
   * (if `create`), copies it when shared.
   */
  private ownChunk(volume: VolumeMeta, index: number, create: boolean): Chunk | undefined {
    const chunk = volume.chunks.get(index);
    if (!chunk) {
      if (!create) return undefined;
      const fresh = new Chunk();
      volume.chunks.set(index, fresh);
      return fresh;
    }
    if (chunk.refs === 1) return chunk;
    const copy = new Chunk(chunk.entries.slice());
    copy.allocated = chunk.allocated;
    for (let slot = 0; slot < CHUNK_TRACKS; slot++) {
      const extent = copy.entries[slot];
      if (extent !== NO_EXTENT) this.reference(extent);
    }
    volume.chunks.set(index, copy);
    this.dereferenceChunk(chunk);
    return copy;
  }

  /** A reference held outside any VTT (a CDP journal entry's extent, cdp-meta.ts). */
  holdExtent(extent: number): void {
    this.reference(extent);
  }

  /** Drops a reference taken by holdExtent (pinned by the listener until durable, as any drop). */
  releaseExtent(extent: number): void {
    this.dereference(extent);
  }

  private reference(extent: number): void {
    this.ensureRefcountCapacity(extent);
    if (this.refcounts[extent]++ === 0) {
      this.usedExtents++;
      this.listener.extentReferenced(extent);
    }
  }

  private dereference(extent: number): void {
    const remaining = --this.refcounts[extent];
    if (remaining === 0) this.usedExtents--;
    this.listener.extentDereferenced(extent, remaining);
  }

  private dereferenceChunk(chunk: Chunk): void {
    chunk.refs--;
    if (chunk.refs > 0) {
      this.listener.chunkDereferenced(chunk);
      return;
    }
    for (let slot = 0; slot < CHUNK_TRACKS; slot++) {
      const extent = chunk.entries[slot];
      if (extent !== NO_EXTENT) this.dereference(extent);
    }
  }

  /** True when no other volume can see this track's extent (through a shared chunk or extent). */
  isExclusive(volume: VolumeMeta, track: number): boolean {
    const chunk = volume.chunks.get(Math.floor(track / CHUNK_TRACKS));
    if (!chunk || chunk.refs !== 1) return false;
    const extent = chunk.entries[track % CHUNK_TRACKS];
    return extent !== NO_EXTENT && this.refcounts[extent] === 1;
  }

  chunkOf(volume: VolumeMeta, track: number): Chunk | undefined {
    return volume.chunks.get(Math.floor(track / CHUNK_TRACKS));
  }

  /** Highest extent index referenced + 1. */
  extentHighWater(): number {
    for (let e = this.refcounts.length - 1; e >= 0; e--) if (this.refcounts[e] !== 0) return e + 1;
    return 0;
  }
}

export function popcount8(byte: number): number {
  let value = byte - ((byte >> 1) & 0x55);
  value = (value & 0x33) + ((value >> 2) & 0x33);
  return (value + (value >> 4)) & 0x0f;
}

export function bitIsSet(bitmap: BitmapMeta, track: number): boolean {
  return (bitmap.bits[track >>> 3] & (1 << (track & 7))) !== 0;
}

/** Whether every track in [first, end) is set (a SetBits record over them would change nothing). */
export function allBitsSet(bitmap: BitmapMeta, first: number, end: number): boolean {
  for (let track = first; track < end; track++) if (!bitIsSet(bitmap, track)) return false;
  return true;
}

function chunkHasAllocation(chunk: Chunk, from: number, to: number): boolean {
  if (chunk.allocated === 0) return false;
  for (let slot = from; slot < to; slot++) if (chunk.entries[slot] !== NO_EXTENT) return true;
  return false;
}
