import { ProblemError } from '@tandem/contract';
import { ActivityLog, activityLogOptions, type ActivityLogOptions } from './activity-log.ts';
import type { MetadataJournal } from './journal.ts';
import { allBitsSet, bitIsSet, CHUNK_TRACKS, NO_EXTENT, type BitmapMeta } from './metadata.ts';
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
  /** Regions where `cover`ed bits may not be durable yet (see activity-log.ts); null until opened. */
  activity: ActivityLog | null = null;
  /** What the activity log held at open: regions and the tracks they added to the bitmaps. */
  activityRecovery = { regions: 0, markedTracks: 0 };

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
    if (allBitsSet(this.meta(id), track, track + count)) return Promise.resolve();
    this.journal.log({ type: RecordType.SetBits, bitmap: id, track, count });
    return this.journal.commit();
  }

  /**
   * Sets bits for host writes about to start: at once in memory, durable
   * with a later commit. Settles when a crash can no longer lose them: their
   * regions are durably in the activity log (at once when they already
   * are), so a restart counts those regions' tracks as set. Costs no I/O for
   * a region written recently.
   */
  cover(id: number, track: number, count: number): Promise<void> {
    if (!allBitsSet(this.meta(id), track, track + count)) this.journal.log({ type: RecordType.SetBits, bitmap: id, track, count });
    // Covered even when the bits were set already: they may still wait for their commit.
    return this.activity?.cover(id, track, track + count) ?? this.journal.commit();
  }

  /** Whether `cover` of these tracks would settle at once (their activity regions are durable): then it may be left unawaited. */
  coveredNow(id: number, track: number, count: number): boolean {
    return this.activity?.coveredNow(id, track, track + count) ?? false;
  }

  /**
   * Opens the activity log in `metaDir`. Every track of the regions it
   * holds may differ (writes were going on there when the agent stopped):
   * their bits are set and committed before the log is emptied, and before
   * anyone reads a bitmap.
   */
  async openActivityLog(metaDir: string, options?: ActivityLogOptions): Promise<void> {
    const previous = await ActivityLog.read(metaDir);
    let marked = 0;
    for (const { bitmap: id, region } of previous.regions) {
      const bitmap = this.journal.state.bitmaps.get(id);
      if (!bitmap) continue; // deleted since
      const first = region * previous.regionTracks;
      const count = Math.min(previous.regionTracks, this.journal.state.volume(bitmap.volume).trackCount - first);
      if (count <= 0) continue;
      const before = bitmap.setCount;
      this.journal.log({ type: RecordType.SetBits, bitmap: id, track: first, count });
      marked += bitmap.setCount - before; // applied to this same object
    }
    if (previous.regions.length > 0) await this.journal.commit();
    this.activity = await ActivityLog.open(metaDir, previous, options ?? activityLogOptions(this.journal.state.trackSize), () =>
      this.journal.commit(),
    );
    this.activityRecovery = { regions: previous.regions.length, markedTracks: marked };
  }

  /** Clean shutdown of the activity log: bits committed, log emptied. */
  async closeActivityLog(): Promise<void> {
    await this.activity?.close();
  }

  /** For crash tests: drop the activity log as `kill -9` would. */
  async abandonActivityLog(): Promise<void> {
    await this.activity?.abandon();
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

  /** Whether a track's bit is set (the host write path's check: no view object per write). */
  isSet(id: number, track: number): boolean {
    return bitIsSet(this.meta(id), track);
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
