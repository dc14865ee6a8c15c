import { ProblemError } from '@tandem/contract';
import type { MetadataJournal } from './journal.ts';
import { bitIsSet, CHUNK_TRACKS, NO_EXTENT, type BitmapMeta } from './metadata.ts';
import { RecordType } from './wal.ts';

/** What callers may read of a bitmap. */
export interface BitmapView {
  readonly id: number;
  readonly trackCount: number;
  readonly setCount: number;
  isSet(track: number): boolean;
  /** First set track at or after `from`, or -1. */
  nextSet(from: number): number;
}

/**
 * Persistent track bitmaps (one bit per track) kept in the metadata journal:
 * the out-of-sync and target-changed bitmaps of mirror pairs. Setting bits
 * is durable when the returned promise settles (so a host write can be
 * acknowledged knowing a crash will not forget it); clearing is lazy, as a
 * bit wrongly left set only costs a track copied again.
 */
export class TrackBitmaps {
  private readonly journal: MetadataJournal;
  private nextId = 1;

  constructor(journal: MetadataJournal) {
    this.journal = journal;
    for (const id of journal.state.bitmaps.keys()) this.nextId = Math.max(this.nextId, id + 1);
  }

  private meta(id: number): BitmapMeta {
    const bitmap = this.journal.state.bitmaps.get(id);
    if (!bitmap) throw new ProblemError('not-found', `there is no track bitmap ${id}`);
    return bitmap;
  }

  /**
   * Creates a bitmap of a volume: all clear, all set, or set exactly on the
   * allocated tracks (an initial copy that skips what reads as zeroes).
   */
  async create(volumeId: number, initial: 'clear' | 'all' | 'allocated'): Promise<number> {
    const id = this.nextId++;
    this.journal.log({ type: RecordType.CreateBitmap, bitmap: id, volume: volumeId, allSet: initial === 'all' });
    if (initial === 'allocated') {
      const state = this.journal.state;
      const volume = state.volume(volumeId);
      const indexes = [...volume.chunks.keys()].sort((a, b) => a - b);
      for (const index of indexes) {
        const chunk = volume.chunks.get(index)!;
        let runStart = -1;
        for (let slot = 0; slot <= CHUNK_TRACKS; slot++) {
          const allocated = slot < CHUNK_TRACKS && chunk.entries[slot] !== NO_EXTENT;
          if (allocated && runStart < 0) runStart = slot;
          if (!allocated && runStart >= 0) {
            this.journal.log({ type: RecordType.SetBits, bitmap: id, track: index * CHUNK_TRACKS + runStart, count: slot - runStart });
            runStart = -1;
          }
        }
      }
    }
    await this.journal.commit();
    return id;
  }

  /** An id no bitmap has, for a bitmap created by a flash record. */
  reserveId(): number {
    for (const id of this.journal.state.bitmaps.keys()) this.nextId = Math.max(this.nextId, id + 1);
    return this.nextId++;
  }

  async delete(id: number): Promise<void> {
    this.meta(id);
    this.journal.log({ type: RecordType.DeleteBitmap, bitmap: id });
    await this.journal.commit();
  }

  /** Sets bits; settles once they are durable. Costs nothing when they already are set. */
  set(id: number, track: number, count: number): Promise<void> {
    const bitmap = this.meta(id);
    for (let t = track; t < track + count; t++) {
      if (!bitIsSet(bitmap, t)) {
        this.journal.log({ type: RecordType.SetBits, bitmap: id, track, count });
        return this.journal.commit();
      }
    }
    return Promise.resolve();
  }

  /** Clears bits (durable with a later commit). */
  clear(id: number, track: number, count: number): void {
    const bitmap = this.meta(id);
    for (let t = track; t < track + count; t++) {
      if (bitIsSet(bitmap, t)) {
        this.journal.log({ type: RecordType.ClearBits, bitmap: id, track, count });
        return;
      }
    }
  }

  /** Sets in `target` every bit of `source`; durable when settled. */
  async merge(target: number, source: number): Promise<void> {
    this.meta(target);
    this.meta(source);
    this.journal.log({ type: RecordType.MergeBitmap, bitmap: target, source });
    await this.journal.commit();
  }

  view(id: number): BitmapView {
    const bitmap = this.meta(id);
    const state = this.journal.state;
    return {
      id,
      get trackCount() {
        return state.volume(bitmap.volume).trackCount;
      },
      get setCount() {
        return state.bitmaps.get(id)?.setCount ?? 0;
      },
      isSet: (track: number) => bitIsSet(state.bitmaps.get(id) ?? bitmap, track),
      nextSet: (from: number) => {
        const current = state.bitmaps.get(id) ?? bitmap;
        const bits = current.bits;
        let track = from;
        const end = bits.length * 8;
        while (track < end) {
          const byte = bits[track >>> 3];
          if (byte === 0) {
            track = ((track >>> 3) + 1) << 3;
            continue;
          }
          if (byte & (1 << (track & 7))) return track;
          track++;
        }
        return -1;
      },
    };
  }
}
