import { ProblemError } from '@tandem/contract';
import type { AllocationRun, BlockDevice, IoOptions, WriteZeroesOptions } from './block-device.ts';
import type { MetadataJournal } from './journal.ts';
import { allBitsSet, CHUNK_TRACKS, NO_EXTENT, type VolumeMeta } from './metadata.ts';
import { RangeLock, type RangeHold } from './range-lock.ts';
import { SegmentCodes } from './segment-codes.ts';
import { RecordType } from './wal.ts';

const ZEROES = Buffer.alloc(1 << 20);

/**
 * One volume as a block device: the engine's read and write path.
 *
 * A write overwrites an extent in place when the extent is the volume's
 * alone (not shared with a snapshot, not pinned by an uncommitted change):
 * that is the common case and costs one pwrite into cached pages. Every
 * other write goes to newly allocated extents (redirect-on-write, with a
 * read-modify-write of partial tracks unless the new extent was never
 * written and so reads as zeroes) and is then mapped by a WAL record. So
 * after a crash a track whose allocation changed reads its old or its new
 * content; an in-place overwrite is atomic per 4 KiB page, as a disk's
 * write is per sector.
 */
export class VolumeDevice implements BlockDevice {
  readonly name: string;
  readonly readOnly: boolean;
  readonly trackSize: number;
  readonly lock = new RangeLock();
  private readonly journal: MetadataJournal;
  private readonly volume: VolumeMeta;
  private readonly codes: SegmentCodes;
  private openers = 0;
  private deleted = false;

  /** Told when a write or trim changed which tracks are allocated (for usage events). */
  private readonly allocationChanged: (volumeId: number) => void;
  /** Bitmaps that record which tracks this volume's writes change (flash copy change recording). */
  private readonly changeBitmaps: () => readonly number[];

  constructor(
    journal: MetadataJournal,
    codes: SegmentCodes,
    volume: VolumeMeta,
    name: string,
    readOnly: boolean,
    allocationChanged: (volumeId: number) => void = () => {},
    changeBitmaps: () => readonly number[] = () => [],
  ) {
    this.changeBitmaps = changeBitmaps;
    this.journal = journal;
    this.codes = codes;
    this.allocationChanged = allocationChanged;
    this.volume = volume;
    this.name = name;
    this.readOnly = readOnly;
    this.trackSize = journal.state.trackSize;
  }

  get id(): number {
    return this.volume.id;
  }

  get sizeBytes(): number {
    return this.volume.sizeBytes;
  }

  get openCount(): number {
    return this.openers;
  }

  retain(): void {
    this.openers++;
  }

  release(): void {
    if (this.openers > 0) this.openers--;
  }

  /** Called by the engine when the volume is deleted: later I/O fails cleanly. */
  markDeleted(): void {
    this.deleted = true;
  }

  private checkRange(offset: number, length: number): void {
    if (this.deleted) throw new ProblemError('not-found', `volume ${this.name} was deleted`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new ProblemError('out-of-range', 'offset and length must be non-negative integers');
    }
    if (offset + length > this.volume.sizeBytes) {
      throw new ProblemError(
        'out-of-range',
        `${length} bytes at ${offset} reach past the end of ${this.name} (${this.volume.sizeBytes} bytes)`,
      );
    }
  }

  /** checkRange's range test, without throwing. */
  private inRange(offset: number, length: number): boolean {
    return Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= this.volume.sizeBytes;
  }

  private checkWritable(): void {
    if (this.readOnly) throw new ProblemError('read-only', `${this.name} is read-only`);
  }

  // --- reads ---

  async readInto(offset: number, target: Buffer): Promise<void> {
    this.checkRange(offset, target.length);
    if (target.length === 0) return;
    const epoch = this.journal.beginRead();
    try {
      const reads: Promise<void>[] = [];
      this.readRuns(offset, target, reads);
      await Promise.all(reads);
    } finally {
      this.journal.endRead(epoch);
    }
  }

  /**
   * See BlockDevice.readIntoNow: the whole range from the page cache,
   * without yielding. No read epoch: those keep freed extents from being
   * reused while a read is in flight, and nothing can free or reuse one
   * while this runs.
   */
  readIntoNow(offset: number, target: Buffer): boolean {
    if (this.deleted || !this.inRange(offset, target.length) || target.length === 0) return false;
    return this.readRuns(offset, target, null);
  }

  /**
   * Reads [offset, offset + target.length) into target, run by run: holes
   * as zeroes, allocated runs (following tracks in the next extents of one
   * file read together) pushed to `reads`, or with `reads` null read from
   * the page cache at once (false as soon as one would wait). The caller
   * holds a read epoch until the reads settled.
   */
  private readRuns(offset: number, target: Buffer, reads: Promise<void>[] | null): boolean {
    const { journal, volume, trackSize } = this;
    const state = journal.state;
    const end = offset + target.length;
    const last = Math.floor((end - 1) / trackSize);
    let track = Math.floor(offset / trackSize);
    while (track <= last) {
      const segmentStart = Math.max(offset, track * trackSize);
      const extent = state.lookup(volume, track);
      if (extent === NO_EXTENT) {
        // Skip the whole unallocated stretch (cheaply, a chunk at a time when absent).
        let next = track + 1;
        while (next <= last && state.lookup(volume, next) === NO_EXTENT) {
          next = volume.chunks.has(Math.floor(next / CHUNK_TRACKS))
            ? next + 1
            : (Math.floor(next / CHUNK_TRACKS) + 1) * CHUNK_TRACKS;
        }
        const stop = Math.min(end, next * trackSize);
        target.fill(0, segmentStart - offset, stop - offset);
        track = next;
        continue;
      }
      // Extend the read over following tracks held in the next extents of the same file.
      let runTracks = 1;
      const limit = journal.extents.runLimit(extent);
      while (
        track + runTracks <= last &&
        runTracks < limit &&
        state.lookup(volume, track + runTracks) === extent + runTracks
      ) {
        runTracks++;
      }
      const stop = Math.min(end, (track + runTracks) * trackSize);
      const within = segmentStart - track * trackSize;
      const slice = target.subarray(segmentStart - offset, stop - offset);
      if (reads !== null) reads.push(journal.extents.read(extent, within, slice));
      else if (!journal.extents.readNow(extent, within, slice)) return false;
      track += runTracks;
    }
    return true;
  }

  allocationMap(offset: number, length: number): AllocationRun[] {
    this.checkRange(offset, length);
    const runs: AllocationRun[] = [];
    const { volume, trackSize } = this;
    const state = this.journal.state;
    const end = offset + length;
    let position = offset;
    // (No closure here: every structured NBD read calls this, and the agent's
    // loader wraps each named closure it creates in a defineProperty call.)
    while (position < end) {
      const track = Math.floor(position / trackSize);
      const chunkIndex = Math.floor(track / CHUNK_TRACKS);
      let stop: number;
      let allocated: boolean;
      if (!volume.chunks.has(chunkIndex)) {
        stop = Math.min(end, (chunkIndex + 1) * CHUNK_TRACKS * trackSize);
        allocated = false;
      } else {
        stop = Math.min(end, (track + 1) * trackSize);
        allocated = state.lookup(volume, track) !== NO_EXTENT;
      }
      const previous = runs.length > 0 ? runs[runs.length - 1] : undefined;
      if (previous !== undefined && previous.allocated === allocated) previous.length += stop - position;
      else runs.push({ length: stop - position, allocated });
      position = stop;
    }
    return runs;
  }

  // --- segment codes ---

  /**
   * Segment codes of tracks [start, start+count), computing the invalid
   * ones (unallocated tracks without I/O). Writes to those tracks wait
   * meanwhile, so a code is never stored valid for data it did not see.
   */
  async segmentCodes(start: number, count: number): Promise<{ codes: BigUint64Array; computed: number }> {
    if (this.deleted) throw new ProblemError('not-found', `volume ${this.name} was deleted`);
    const end = Math.min(start + count, this.volume.trackCount);
    if (start < 0 || start >= end) throw new ProblemError('out-of-range', `no tracks ${start}..${start + count - 1} in ${this.name}`);
    const out = new BigUint64Array(end - start);
    const missing: number[] = [];
    for (let track = start; track < end; track++) {
      const code = this.codes.get(this.volume.id, track);
      if (code === undefined) missing.push(track);
      else out[track - start] = code;
    }
    if (missing.length === 0) return { codes: out, computed: 0 };
    const hold = this.lock.tryAcquire(missing[0], missing[missing.length - 1] + 1) ??
      (await this.lock.acquire(missing[0], missing[missing.length - 1] + 1));
    try {
      const state = this.journal.state;
      const buffers: Buffer[] = [];
      const work = async (): Promise<void> => {
        const buffer = buffers.pop() ?? Buffer.allocUnsafe(this.trackSize);
        for (let next = missing.pop(); next !== undefined; next = missing.pop()) {
          const extent = state.lookup(this.volume, next);
          let code: bigint;
          if (extent === NO_EXTENT) code = this.codes.zeroCode;
          else {
            const epoch = this.journal.beginRead();
            try {
              await this.journal.extents.read(extent, 0, buffer);
            } finally {
              this.journal.endRead(epoch);
            }
            code = SegmentCodes.hash(buffer);
          }
          this.codes.set(this.volume.id, next, code);
          out[next - start] = code;
        }
        buffers.push(buffer);
      };
      const total = missing.length;
      await Promise.all(Array.from({ length: Math.min(8, total) }, work));
      return { codes: out, computed: total };
    } finally {
      this.lock.release(hold);
    }
  }

  // --- writes ---

  async write(offset: number, data: Buffer, options?: IoOptions): Promise<void> {
    this.checkWritable();
    this.checkRange(offset, data.length);
    if (data.length > 0) {
      const first = Math.floor(offset / this.trackSize);
      const end = Math.floor((offset + data.length - 1) / this.trackSize) + 1;
      const hold = this.lock.tryAcquire(first, end) ?? (await this.lock.acquire(first, end));
      try {
        await this.writeLocked(offset, data);
      } finally {
        this.lock.release(hold);
      }
    }
    if (options?.fua) await this.journal.commit();
  }

  /**
   * See BlockDevice.canWriteNow: a small write of whole pages into tracks
   * that are the volume's alone (written in place), no change bitmap to
   * mark, nothing else holding the tracks.
   */
  canWriteNow(offset: number, length: number): boolean {
    if (this.readOnly || this.deleted || length === 0 || !this.inRange(offset, length)) return false;
    const { journal, trackSize } = this;
    if (!journal.extents.writesNowInVolume(offset, length)) return false;
    const first = Math.floor(offset / trackSize);
    const end = Math.floor((offset + length - 1) / trackSize) + 1;
    if (this.needsMarks(first, end) || !this.lock.isFree(first, end)) return false;
    for (let track = first; track < end; track++) if (!this.writesInPlace(track)) return false;
    return true;
  }

  /**
   * See BlockDevice.writeNow: what `write` does for an overwrite in place
   * (canWriteNow), without yielding: the data goes into the page cache,
   * segment codes are invalidated, and as before no metadata record is
   * logged; a FLUSH makes it durable (the file is marked dirty). Anything
   * else returns false.
   */
  writeNow(offset: number, data: Buffer): boolean {
    const length = data.length;
    if (!this.canWriteNow(offset, length)) return false;
    const { journal, volume, trackSize } = this;
    const state = journal.state;
    const first = Math.floor(offset / trackSize);
    const end = Math.floor((offset + length - 1) / trackSize) + 1;
    const hold = this.lock.tryAcquire(first, end)!;
    let wrote = false;
    try {
      for (let track = first; track < end; ) {
        // One write over following tracks held in the next extents of the same file, as writeLockedOnce.
        const extent = state.lookup(volume, track);
        const limit = journal.extents.runLimit(extent);
        let count = 1;
        while (track + count < end && count < limit && state.lookup(volume, track + count) === extent + count) count++;
        const segmentStart = Math.max(offset, track * trackSize);
        const segmentEnd = Math.min(offset + length, (track + count) * trackSize);
        wrote = true;
        if (!journal.extents.writeNow(extent, segmentStart - track * trackSize, data.subarray(segmentStart - offset, segmentEnd - offset))) return false;
        track += count;
      }
      return true;
    } finally {
      // Also after a failed attempt: part of the range may have changed.
      if (wrote) this.codes.invalidate(volume.id, first, end);
      this.lock.release(hold);
    }
  }

  /** Whether a write to tracks [first, end) would log a change-recording mark (markChanges). */
  private needsMarks(first: number, end: number): boolean {
    const bitmaps = this.changeBitmaps();
    if (bitmaps.length === 0) return false;
    const state = this.journal.state;
    for (const id of bitmaps) {
      const bitmap = state.bitmaps.get(id);
      if (bitmap && !allBitsSet(bitmap, first, end)) return true;
    }
    return false;
  }

  async trim(offset: number, length: number, options?: IoOptions): Promise<void> {
    await this.zeroRange(offset, length, false, options);
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    await this.zeroRange(offset, length, options?.noHole ?? false, options);
  }

  async flush(): Promise<void> {
    await this.journal.commit();
  }

  private async zeroRange(offset: number, length: number, noHole: boolean, options?: IoOptions): Promise<void> {
    this.checkWritable();
    this.checkRange(offset, length);
    if (length > 0) {
      const { trackSize } = this;
      const end = offset + length;
      const first = Math.floor(offset / trackSize);
      const last = Math.floor((end - 1) / trackSize) + 1;
      const hold: RangeHold = this.lock.tryAcquire(first, last) ?? (await this.lock.acquire(first, last));
      try {
        const marking = this.commitMarksBeforeInPlace(first, last);
        if (marking) await marking;
        if (noHole) {
          for (let position = offset; position < end; position += ZEROES.length) {
            await this.writeLocked(position, ZEROES.subarray(0, Math.min(ZEROES.length, end - position)));
          }
        } else {
          const fullStart = Math.ceil(offset / trackSize);
          const fullEnd = Math.floor(end / trackSize);
          if (fullStart < fullEnd) {
            await this.zeroPartial(offset, Math.min(end, fullStart * trackSize));
            this.codes.invalidate(this.volume.id, fullStart, fullEnd);
            if (this.hasAllocation(fullStart, fullEnd)) {
              this.journal.log({
                type: RecordType.UnmapTracks,
                volume: this.volume.id,
                track: fullStart,
                count: fullEnd - fullStart,
              });
              this.allocationChanged(this.volume.id);
            }
            await this.zeroPartial(Math.max(offset, fullEnd * trackSize), end);
          } else {
            await this.zeroPartial(offset, end);
          }
        }
      } finally {
        this.lock.release(hold);
      }
    }
    if (options?.fua) await this.journal.commit();
  }

  /** Zeroes [from, to) inside tracks that are allocated; unallocated ones already read as zeroes. */
  private async zeroPartial(from: number, to: number): Promise<void> {
    const { trackSize } = this;
    for (let position = from; position < to; ) {
      const track = Math.floor(position / trackSize);
      const stop = Math.min(to, (track + 1) * trackSize);
      if (this.journal.state.lookup(this.volume, track) !== NO_EXTENT) {
        await this.writeLocked(position, ZEROES.subarray(0, stop - position));
      }
      position = stop;
    }
  }

  private hasAllocation(fromTrack: number, toTrack: number): boolean {
    const state = this.journal.state;
    for (let track = fromTrack; track < toTrack; ) {
      const chunkIndex = Math.floor(track / CHUNK_TRACKS);
      const chunkEnd = Math.min(toTrack, (chunkIndex + 1) * CHUNK_TRACKS);
      const chunk = this.volume.chunks.get(chunkIndex);
      if (chunk) {
        for (let t = track; t < chunkEnd; t++) if (state.lookup(this.volume, t) !== NO_EXTENT) return true;
      }
      track = chunkEnd;
    }
    return false;
  }

  /**
   * Marks tracks [first, end) in the change-recording bitmaps before they
   * change; true when a mark was logged (a track's first change since the
   * bitmap was cleared). The mark must be durable no later than the data:
   * a redirected write is mapped by a record logged after the mark, so the
   * mark is durable first. The write path therefore redirects every track
   * of a write that logged a mark (see writeLocked) instead of waiting for
   * a commit; other callers use commitMarksBeforeInPlace.
   */
  private markChanges(first: number, end: number): boolean {
    const bitmaps = this.changeBitmaps();
    if (bitmaps.length === 0) return false;
    const state = this.journal.state;
    let logged = false;
    for (const id of bitmaps) {
      const bitmap = state.bitmaps.get(id);
      if (!bitmap || allBitsSet(bitmap, first, end)) continue;
      this.journal.log({ type: RecordType.SetBits, bitmap: id, track: first, count: end - first });
      logged = true;
    }
    return logged;
  }

  /**
   * Marks tracks [first, end) (markChanges) for a change that may overwrite
   * some of them in place, which has no record of its own: then the mark is
   * committed before the data is written.
   */
  private commitMarksBeforeInPlace(first: number, end: number): Promise<void> | undefined {
    if (!this.markChanges(first, end)) return undefined;
    for (let track = first; track < end; track++) if (this.writesInPlace(track)) return this.journal.commit();
    return undefined;
  }

  /**
   * Flash copy background copy: gives this volume its own copy of every
   * track in [first, end) whose extent it still shares with `sharedWith`
   * (same content, so segment codes stay valid). Returns the tracks copied.
   */
  async unshareTracks(first: number, end: number, sharedWith: VolumeMeta): Promise<number> {
    if (this.deleted) throw new ProblemError('not-found', `volume ${this.name} was deleted`);
    const { journal, volume, trackSize } = this;
    const state = journal.state;
    const stop = Math.min(end, volume.trackCount, sharedWith.trackCount);
    if (first >= stop) return 0;
    const hold = this.lock.tryAcquire(first, stop) ?? (await this.lock.acquire(first, stop));
    try {
      const tracks: number[] = [];
      for (let track = first; track < stop; track++) {
        const extent = state.lookup(volume, track);
        if (extent !== NO_EXTENT && extent === state.lookup(sharedWith, track)) tracks.push(track);
      }
      let copied = 0;
      for (let i = 0; i < tracks.length; ) {
        let j = i + 1;
        while (j < tracks.length && tracks[j] === tracks[j - 1] + 1) j++;
        const runEnd = tracks[j - 1] + 1;
        for (let track = tracks[i]; track < runEnd; ) {
          const run = journal.allocator.allocateRun(runEnd - track, (e) => journal.extents.runLimit(e));
          const payload = Buffer.allocUnsafe(run.count * trackSize);
          try {
            await this.readTracks(payload, track, Array.from({ length: run.count }, (_, k) => track + k));
            await journal.extents.write(run.start, 0, payload);
          } catch (error) {
            this.releaseExtents(run.start, run.count);
            throw error;
          }
          this.mapTracks(track, run.start, run.count);
          track += run.count;
          copied += run.count;
        }
        i = j;
      }
      if (copied > 0) this.allocationChanged(volume.id);
      return copied;
    } finally {
      this.lock.release(hold);
    }
  }

  /**
   * The write path proper; the caller holds the range lock over the touched
   * tracks. When the pool's file system is full, the write is tried once
   * more with extents freed earlier (deleted volumes or snapshots: their
   * room in the files is still there) before `no-space` is returned.
   */
  private async writeLocked(offset: number, data: Buffer): Promise<void> {
    const redirected = this.markChanges(Math.floor(offset / this.trackSize), Math.floor((offset + data.length - 1) / this.trackSize) + 1);
    try {
      await this.writeLockedOnce(offset, data, redirected);
    } catch (error) {
      if (!(error instanceof ProblemError && error.problem === 'no-space')) throw error;
      this.journal.allocator.rewind();
      // Its marks are logged already: redirected again if they were the first (see writeLockedOnce).
      await this.writeLockedOnce(offset, data, redirected);
    }
  }

  private async writeLockedOnce(offset: number, data: Buffer, redirectAll: boolean): Promise<void> {
    const { journal, volume, trackSize } = this;
    const state = journal.state;
    const end = offset + data.length;
    const first = Math.floor(offset / trackSize);
    const last = Math.floor((end - 1) / trackSize);
    // A track's first change since a change-recording bitmap was cleared is
    // redirected (its mark is logged before the MapTrack record, so it is
    // durable no later than the data) rather than written in place after a
    // commit of the mark: no fdatasync before the host ack (markChanges, by the caller).
    const inPlace = (t: number): boolean => !redirectAll && this.writesInPlace(t);
    const io: Promise<void>[] = [];
    const remaps: Array<{ track: number; count: number; extent: number }> = [];
    let track = first;
    while (track <= last) {
      if (inPlace(track)) {
        // In place, as one pwrite over following tracks held in the next extents of the same file.
        const extent = state.lookup(volume, track);
        const limit = journal.extents.runLimit(extent);
        let count = 1;
        while (
          track + count <= last &&
          count < limit &&
          state.lookup(volume, track + count) === extent + count &&
          inPlace(track + count)
        ) {
          count++;
        }
        const segmentStart = Math.max(offset, track * trackSize);
        const segmentEnd = Math.min(end, (track + count) * trackSize);
        io.push(journal.extents.write(extent, segmentStart - track * trackSize, data.subarray(segmentStart - offset, segmentEnd - offset)));
        track += count;
        continue;
      }
      // Redirect-on-write for a run of tracks: as many as the allocator gives consecutively.
      let runEnd = track + 1;
      while (runEnd <= last && !inPlace(runEnd)) runEnd++;
      const run = journal.allocator.allocateRun(runEnd - track, (e) => journal.extents.runLimit(e));
      const runStart = track * trackSize;
      const runStop = (track + run.count) * trackSize;
      let payload: Buffer;
      let within = 0;
      let copied: Promise<void> | null;
      if (runStart >= offset && runStop <= end) {
        payload = data.subarray(runStart - offset, runStop - offset);
      } else if (journal.extents.neverWritten(run.start) && this.unallocatedRun(track, run.count)) {
        // A first write into extents never written: the rest of them reads as zeroes already.
        within = Math.max(offset, runStart) - runStart;
        payload = data.subarray(Math.max(offset, runStart) - offset, Math.min(end, runStop) - offset);
      } else if (run.count === 1 && (copied = this.redirectTrack(track, run.start, offset, data)) !== null) {
        // One partly written track copied and written without yielding (the common first write after a snapshot).
        io.push(copied);
        remaps.push({ track, count: 1, extent: run.start });
        track += 1;
        continue;
      } else {
        payload = Buffer.allocUnsafe(run.count * trackSize);
        await this.fillOld(payload, track, run.count, offset, end);
        const copyFrom = Math.max(offset, runStart);
        const copyTo = Math.min(end, runStop);
        data.copy(payload, copyFrom - runStart, copyFrom - offset, copyTo - offset);
      }
      io.push(journal.extents.write(run.start, within, payload));
      remaps.push({ track, count: run.count, extent: run.start });
      track += run.count;
    }
    const results = await Promise.allSettled(io);
    this.codes.invalidate(volume.id, first, last + 1);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const remap of remaps) this.releaseExtents(remap.extent, remap.count);
      throw failed.reason;
    }
    for (const remap of remaps) this.mapTracks(remap.track, remap.extent, remap.count);
    if (remaps.length > 0) this.allocationChanged(volume.id);
  }

  /** Gives back `count` newly allocated extents from `start` that a failed write did not map. */
  private releaseExtents(start: number, count: number): void {
    for (let i = 0; i < count; i++) this.journal.allocator.release(start + i);
  }

  /** Logs the mapping of tracks [track, track+count) to the new extents from `extent`. */
  private mapTracks(track: number, extent: number, count: number): void {
    for (let i = 0; i < count; i++) {
      this.journal.log({ type: RecordType.MapTrack, volume: this.volume.id, track: track + i, extent: extent + i });
    }
  }

  /** Whether this track's part of a write goes in place: the extent is the volume's alone. */
  private writesInPlace(track: number): boolean {
    const extent = this.journal.state.lookup(this.volume, track);
    return extent !== NO_EXTENT && this.journal.canWriteInPlace(this.volume, track, extent);
  }

  private unallocatedRun(first: number, count: number): boolean {
    for (let track = first; track < first + count; track++) {
      if (this.journal.state.lookup(this.volume, track) !== NO_EXTENT) return false;
    }
    return true;
  }

  /**
   * Writes the part of `data` (at volume `offset`) that falls in `track`
   * over the track's current content into the new extent `to`, synchronously
   * (see ExtentStore.redirectTrackSync); null when that way is not available.
   */
  private redirectTrack(track: number, to: number, offset: number, data: Buffer): Promise<void> | null {
    const { journal, trackSize } = this;
    const trackStart = track * trackSize;
    const from = Math.max(offset, trackStart);
    const part = data.subarray(from - offset, Math.min(offset + data.length, trackStart + trackSize) - offset);
    const extent = journal.state.lookup(this.volume, track);
    const epoch = journal.beginRead();
    try {
      return journal.extents.redirectTrackSync(extent === NO_EXTENT ? null : extent, to, from - trackStart, part);
    } finally {
      journal.endRead(epoch);
    }
  }

  /**
   * Fills the head and tail tracks of a redirected run that the write covers
   * only partly with their current content (zeroes when unallocated).
   */
  private async fillOld(payload: Buffer, firstTrack: number, count: number, offset: number, end: number): Promise<void> {
    const { trackSize } = this;
    const edges = new Set<number>([firstTrack, firstTrack + count - 1]);
    const partial = [...edges].filter((track) => !(track * trackSize >= offset && (track + 1) * trackSize <= end));
    await this.readTracks(payload, firstTrack, partial);
  }

  /**
   * Reads the current content of `tracks` (zeroes when unallocated) into
   * their slots of `payload`, which holds the tracks from `firstTrack` on.
   */
  private async readTracks(payload: Buffer, firstTrack: number, tracks: Iterable<number>): Promise<void> {
    const { trackSize } = this;
    const reads: Promise<void>[] = [];
    for (const track of tracks) {
      const slot = payload.subarray((track - firstTrack) * trackSize, (track - firstTrack + 1) * trackSize);
      const extent = this.journal.state.lookup(this.volume, track);
      if (extent === NO_EXTENT) slot.fill(0);
      else {
        const epoch = this.journal.beginRead();
        reads.push(this.journal.extents.read(extent, 0, slot).finally(() => this.journal.endRead(epoch)));
      }
    }
    await Promise.all(reads);
  }
}
