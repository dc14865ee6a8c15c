import { ProblemError } from '@tandem/contract';
import { extentAt } from '../storage/cdp-meta.ts';
import type { AllocationRun, BlockDevice } from '../storage/block-device.ts';
import type { StorageEngine } from '../storage/engine.ts';
import type { MetadataJournal } from '../storage/journal.ts';
import { NO_EXTENT } from '../storage/metadata.ts';
import type { CdpJournal } from './journal.ts';

/**
 * Instant image access: the replica group as of one point, read through
 * pointers. Each track resolves at read time to the extent that held it at
 * the point (extentAt: the undo of the first distributed record after the
 * point, else the last undistributed record up to it, else the replica's
 * own), so opening costs nothing at any depth and distribution may go on
 * meanwhile (it moves pointers; what the point needs stays held, and the
 * journal keeps the point while the image is open).
 *
 * Writes to the image go to extents of its own: allocated from the pool,
 * written, never named by a WAL record. Close gives them back; after a
 * crash nothing references them, so recovery's allocator sees them free.
 */
export class ImageAccess {
  readonly seq: number;
  private readonly engine: StorageEngine;
  private readonly journal: MetadataJournal;
  private readonly owner: CdpJournal;
  private readonly onClose: () => void;
  /** Per volume, per track: the image's own extent (tracks it wrote). */
  private readonly overlay = new Map<number, Map<number, number>>();
  private writes: Promise<unknown> = Promise.resolve();
  private readonly reads = new Set<Promise<unknown>>();
  private closed = false;

  constructor(engine: StorageEngine, owner: CdpJournal, seq: number, onClose: () => void) {
    this.engine = engine;
    this.journal = engine.metadataJournal;
    this.owner = owner;
    this.seq = seq;
    this.onClose = onClose;
  }

  get trackSize(): number {
    return this.engine.trackSize;
  }

  /** Bytes of the image's own writes (discarded at close). */
  get writtenBytes(): number {
    let tracks = 0;
    for (const map of this.overlay.values()) tracks += map.size;
    return tracks * this.trackSize;
  }

  sizeOf(volume: number): number {
    if (!this.owner.meta.volumes.includes(volume)) throw new ProblemError('not-found', `volume ${volume} is not in journal ${this.owner.id}`);
    return this.engine.metadata.volume(volume).sizeBytes;
  }

  private check(volume: number, offset: number, length: number): void {
    if (this.closed) throw new ProblemError('conflict', `the image at point ${this.seq} is closed`);
    const size = this.sizeOf(volume);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
      throw new ProblemError('out-of-range', `${length} bytes at ${offset} do not fit volume ${volume} (${size} bytes)`);
    }
  }

  /** The extent behind a track in this image (NO_EXTENT: zeroes). */
  extentOf(volume: number, track: number): number {
    const own = this.overlay.get(volume)?.get(track);
    if (own !== undefined) return own;
    return extentAt(this.engine.metadata, this.owner.meta, volume, track, this.seq);
  }

  async read(volume: number, offset: number, target: Buffer): Promise<void> {
    this.check(volume, offset, target.length);
    const read = this.readTracks(volume, offset, target);
    this.reads.add(read);
    try {
      await read;
    } finally {
      this.reads.delete(read);
    }
  }

  private async readTracks(volume: number, offset: number, target: Buffer): Promise<void> {
    const { trackSize } = this;
    const end = offset + target.length;
    const epoch = this.journal.beginRead();
    try {
      const reads: Promise<void>[] = [];
      for (let position = offset; position < end; ) {
        const track = Math.floor(position / trackSize);
        const stop = Math.min(end, (track + 1) * trackSize);
        const slice = target.subarray(position - offset, stop - offset);
        const extent = this.extentOf(volume, track);
        if (extent === NO_EXTENT) slice.fill(0);
        else reads.push(this.journal.extents.read(extent, position - track * trackSize, slice));
        position = stop;
      }
      await Promise.all(reads);
    } finally {
      this.journal.endRead(epoch);
    }
  }

  /** Writes into the image only (kept apart from the replica and the journal; discarded at close). */
  write(volume: number, offset: number, data: Buffer): Promise<void> {
    this.check(volume, offset, data.length);
    const result = this.writes.then(() => this.writeTracks(volume, offset, data));
    this.writes = result.catch(() => {});
    return result;
  }

  private async writeTracks(volume: number, offset: number, data: Buffer): Promise<void> {
    const { trackSize, journal } = this;
    let own = this.overlay.get(volume);
    if (!own) {
      own = new Map();
      this.overlay.set(volume, own);
    }
    const end = offset + data.length;
    for (let position = offset; position < end; ) {
      const track = Math.floor(position / trackSize);
      const stop = Math.min(end, (track + 1) * trackSize);
      const part = data.subarray(position - offset, stop - offset);
      const within = position - track * trackSize;
      const mine = own.get(track);
      if (mine !== undefined) {
        await journal.extents.write(mine, within, part);
      } else {
        const buffer = Buffer.allocUnsafe(trackSize);
        if (part.length < trackSize) {
          const epoch = journal.beginRead();
          try {
            const extent = extentAt(this.engine.metadata, this.owner.meta, volume, track, this.seq);
            if (extent === NO_EXTENT) buffer.fill(0);
            else await journal.extents.read(extent, 0, buffer);
          } finally {
            journal.endRead(epoch);
          }
        }
        part.copy(buffer, within);
        const { start } = journal.allocator.allocateRun(1, () => 1);
        try {
          await journal.extents.write(start, 0, buffer);
        } catch (error) {
          journal.allocator.release(start);
          throw error;
        }
        own.set(track, start);
      }
      position = stop;
    }
  }

  /** Ends the image: waits for its I/O, gives its own extents back, lets retention pass its point. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writes;
    await Promise.allSettled([...this.reads]);
    for (const own of this.overlay.values()) for (const extent of own.values()) this.journal.allocator.release(extent);
    this.overlay.clear();
    this.onClose();
  }
}

/**
 * One volume of an image as a block device (what an NBD export of the
 * image will serve). Trims and write-zeroes write zeroes into the image's
 * own extents; flush has nothing to do (the image's writes are discarded
 * at close anyway).
 */
export class ImageDevice implements BlockDevice {
  readonly name: string;
  readonly readOnly = false;
  private readonly image: ImageAccess;
  private readonly volume: number;
  private openers = 0;

  constructor(image: ImageAccess, volume: number, name: string) {
    this.image = image;
    this.volume = volume;
    this.name = name;
  }

  get sizeBytes(): number {
    return this.image.sizeOf(this.volume);
  }

  get trackSize(): number {
    return this.image.trackSize;
  }

  get openCount(): number {
    return this.openers;
  }

  readInto(offset: number, target: Buffer): Promise<void> {
    return this.image.read(this.volume, offset, target);
  }

  write(offset: number, data: Buffer): Promise<void> {
    // The image's write path keeps no reference to `data` once it settles.
    return this.image.write(this.volume, offset, data);
  }

  async trim(offset: number, length: number): Promise<void> {
    await this.writeZeroes(offset, length);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    const step = 1 << 20;
    for (let at = offset; at < offset + length; at += step) await this.image.write(this.volume, at, Buffer.alloc(Math.min(step, offset + length - at)));
  }

  async flush(): Promise<void> {}

  allocationMap(offset: number, length: number): AllocationRun[] {
    const runs: AllocationRun[] = [];
    const { trackSize } = this;
    for (let position = offset; position < offset + length; ) {
      const track = Math.floor(position / trackSize);
      const stop = Math.min(offset + length, (track + 1) * trackSize);
      const allocated = this.image.extentOf(this.volume, track) !== NO_EXTENT;
      const last = runs[runs.length - 1];
      if (last && last.allocated === allocated) last.length += stop - position;
      else runs.push({ length: stop - position, allocated });
      position = stop;
    }
    return runs;
  }

  retain(): void {
    this.openers++;
  }

  release(): void {
    if (this.openers > 0) this.openers--;
  }
}
