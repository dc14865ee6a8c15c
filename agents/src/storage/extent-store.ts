import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ProblemError } from '@tandem/contract';
import type { StorageMeter } from './meter.ts';
import { chunkedWrite, nowaitRead } from './nowait-io.ts';

/**
 * The pool's extent files. Extent e lives in file floor(e / perFile) at
 * offset (e % perFile) * trackSize. Files grow as extents are first written
 * (sparse until then), so capacity is a number, not preallocated space.
 */

const FILE_BYTES = 1024 ** 3;

export function extentFileName(index: number): string {
  return `extent-${String(index).padStart(5, '0')}.dat`;
}

export function extentsPerFile(trackSize: number): number {
  return Math.max(1, Math.floor(FILE_BYTES / trackSize));
}

export class ExtentStore {
  readonly trackSize: number;
  readonly perFile: number;
  private readonly dir: string;
  private readonly fds: number[] = [];
  /** Files written since their last fdatasync. */
  private readonly dirty = new Set<number>();
  /** No extent at or above this index was ever written: such extents read as zeroes. */
  private writtenBound = 0;
  /** The track buffer of redirectTrackSync (allocated on first use). */
  private scratch: Buffer | null = null;
  /** Times each data file fdatasync (metrics); null when nobody measures. */
  meter: StorageMeter | null = null;

  private constructor(dir: string, trackSize: number) {
    this.dir = dir;
    this.trackSize = trackSize;
    this.perFile = extentsPerFile(trackSize);
  }

  /** Opens the existing extent files; returns the store and how many extents they span. */
  static async open(dir: string, trackSize: number): Promise<{ store: ExtentStore; spannedExtents: number }> {
    const store = new ExtentStore(dir, trackSize);
    const names = (await fsp.readdir(dir)).filter((n) => /^extent-\d{5}\.dat$/.test(n)).sort();
    let spanned = 0;
    for (let index = 0; index < names.length; index++) {
      if (names[index] !== extentFileName(index)) throw new Error(`extent file ${extentFileName(index)} is missing`);
      const file = path.join(dir, names[index]);
      store.fds[index] = fs.openSync(file, 'r+');
      const { size } = await fsp.stat(file);
      spanned = index * store.perFile + Math.ceil(size / trackSize);
    }
    store.writtenBound = spanned;
    return { store, spannedExtents: spanned };
  }

  /** fd of the file holding extent e, opening (creating) it on first use. */
  private fdFor(fileIndex: number): number {
    let fd = this.fds[fileIndex];
    if (fd === undefined) {
      for (let index = this.fds.length; index <= fileIndex; index++) {
        // A deliberate synchronous open: rare (once per GiB of pool), and the
        // write path must not interleave two opens of one file.
        this.fds[index] = fs.openSync(
          path.join(this.dir, extentFileName(index)),
          fs.constants.O_RDWR | fs.constants.O_CREAT,
          0o600,
        );
      }
      fd = this.fds[fileIndex];
    }
    return fd;
  }

  /**
   * Writes `data` (a whole number of tracks, or less for an in-place update
   * at `within`) into a run of consecutive extents starting at `extent`.
   */
  write(extent: number, within: number, data: Buffer): Promise<void> {
    const reach = extent + Math.ceil((within + data.length) / this.trackSize);
    if (reach > this.writtenBound) this.writtenBound = reach;
    const fileIndex = Math.floor(extent / this.perFile);
    const fd = this.fdFor(fileIndex);
    this.dirty.add(fileIndex);
    const position = (extent % this.perFile) * this.trackSize + within;
    if (this.writesNow(position, data.length)) {
      return writeSmallSync(fd, data, position);
    }
    if (chunkedWrite !== null) return writeChunked(fd, data, position);
    return pwriteAll(fd, data, position);
  }

  /** Whether a write of `length` bytes at `position` of a file is one writeNow does. */
  writesNow(position: number, length: number): boolean {
    return syncSmallWrites && length <= SMALL_WRITE_BYTES && position % PAGE === 0 && length % PAGE === 0;
  }

  /** The same at `offset` of a volume, whichever extents hold its tracks (tracks of whole pages keep the alignment). */
  writesNowInVolume(offset: number, length: number): boolean {
    return this.trackSize % PAGE === 0 && this.writesNow(offset, length);
  }

  /**
   * `write` done now or not at all: a small write of whole pages (as `write`
   * does those synchronously); false for any other write, or when the
   * write failed (the caller then writes through `write`, which reports
   * the error). The extents must be allocated and written before (an
   * in-place overwrite).
   */
  writeNow(extent: number, within: number, data: Buffer): boolean {
    const position = (extent % this.perFile) * this.trackSize + within;
    if (!this.writesNow(position, data.length)) return false;
    const reach = extent + Math.ceil((within + data.length) / this.trackSize);
    if (reach > this.writtenBound) this.writtenBound = reach;
    const fileIndex = Math.floor(extent / this.perFile);
    const fd = this.fdFor(fileIndex);
    this.dirty.add(fileIndex);
    try {
      let done = 0;
      while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * `read` done now or not at all: true when the page cache held all of it
   * (nowait-io.ts); false without the addon, for reads larger than
   * NOWAIT_READ_MAX_BYTES, or when part of it would wait for the disk.
   */
  readNow(extent: number, within: number, target: Buffer): boolean {
    if (nowaitRead === null || target.length > NOWAIT_READ_MAX_BYTES) return false;
    const fd = this.fdFor(Math.floor(extent / this.perFile));
    return nowaitRead(fd, target, (extent % this.perFile) * this.trackSize + within) === target.length;
  }

  /**
   * Redirect-on-write of one track that a write covers only partly, done
   * synchronously when the track is a small write (as `write` does it):
   * reads the track of extent `from` (zeroes for null) into a scratch
   * buffer, lays `data` over it at `within` and writes the whole track into
   * extent `to`. A 64 KiB track in the page cache is read and written in
   * microseconds, less than one round trip through the thread pool costs;
   * and as nothing yields in between, one scratch buffer serves every
   * write. The old track is read only from the page cache (nowait-io.ts):
   * a read that would wait for the disk must not stall the event loop.
   * Returns null when the caller must do it asynchronously (large tracks,
   * the old track not cached, no nowait reads, or
   * TANDEM_SYNC_SMALL_WRITES=0). The caller holds a read epoch over `from`
   * and maps `to` only after the returned promise resolved.
   */
  redirectTrackSync(from: number | null, to: number, within: number, data: Buffer): Promise<void> | null {
    if (!syncSmallWrites || this.trackSize > SMALL_WRITE_BYTES) return null;
    const scratch = (this.scratch ??= Buffer.allocUnsafe(this.trackSize));
    if (from === null || this.neverWritten(from)) scratch.fill(0);
    else {
      const fd = this.fdFor(Math.floor(from / this.perFile));
      if (nowaitRead === null || nowaitRead(fd, scratch, (from % this.perFile) * this.trackSize) !== scratch.length) return null;
    }
    data.copy(scratch, within);
    return this.write(to, 0, scratch);
  }

  /**
   * Reads into target from a run of consecutive extents starting at extent
   * (plus `within` bytes). What the page cache holds is copied at once
   * (nowait-io.ts: no thread-pool round trip, never a wait for the disk);
   * the rest, or all of it without the addon, is read by the thread pool.
   */
  read(extent: number, within: number, target: Buffer): Promise<void> {
    const fileIndex = Math.floor(extent / this.perFile);
    const fd = this.fdFor(fileIndex);
    const position = (extent % this.perFile) * this.trackSize + within;
    if (nowaitRead !== null && target.length <= NOWAIT_READ_MAX_BYTES) {
      const done = nowaitRead(fd, target, position);
      if (done === target.length) return RESOLVED;
      return preadAll(fd, target.subarray(done), position + done);
    }
    return preadAll(fd, target, position);
  }

  /** True when the extent (and all after it) was never written, so it reads as zeroes. */
  neverWritten(extent: number): boolean {
    return extent >= this.writtenBound;
  }

  /** How many extents from `extent` on stay inside one file. */
  runLimit(extent: number): number {
    return this.perFile - (extent % this.perFile);
  }

  hasDirtyData(): boolean {
    return this.dirty.size > 0;
  }

  /** fdatasync of every file written since the last sync. */
  async syncData(): Promise<void> {
    if (this.dirty.size === 0) return;
    const files = [...this.dirty];
    this.dirty.clear();
    const meter = this.meter;
    if (meter === null) {
      await Promise.all(files.map((index) => fdatasync(this.fds[index])));
      return;
    }
    await Promise.all(
      files.map(async (index) => {
        const started = performance.now();
        await fdatasync(this.fds[index]);
        meter.synced('data', (performance.now() - started) / 1000);
      }),
    );
  }

  async apparentBytes(): Promise<number> {
    let total = 0;
    for (let index = 0; index < this.fds.length; index++) {
      total += (await fsp.stat(path.join(this.dir, extentFileName(index)))).size;
    }
    return total;
  }

  close(): void {
    for (const fd of this.fds) if (fd !== undefined) fs.closeSync(fd);
    this.fds.length = 0;
  }
}

function ioProblem(error: NodeJS.ErrnoException): Error {
  if (error.code === 'ENOSPC' || error.code === 'EDQUOT') {
    return new ProblemError('no-space', 'the pool file system is full');
  }
  return error;
}

const SMALL_WRITE_BYTES = 64 * 1024;
/** TANDEM_SYNC_SMALL_WRITES=0 sends every write through the thread pool instead. */
const syncSmallWrites = process.env.TANDEM_SYNC_SMALL_WRITES !== '0';
/** Reads up to this size try the page cache first (larger ones overlap better in the thread pool). */
const NOWAIT_READ_MAX_BYTES = Number(process.env.TANDEM_NOWAIT_READ_MAX_BYTES ?? 256 * 1024);
const RESOLVED = Promise.resolve();
const PAGE = 4096;

/**
 * A deliberate synchronous write: a small write of whole pages lands in the
 * page cache in microseconds, less than a round trip through the thread
 * pool costs. (A write of part of a page that is not cached would make the
 * kernel read that page first, so such writes take the thread pool.)
 */
function writeSmallSync(fd: number, data: Buffer, position: number): Promise<void> {
  try {
    let done = 0;
    while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
    return Promise.resolve();
  } catch (error) {
    return Promise.reject(ioProblem(error as NodeJS.ErrnoException));
  }
}

/**
 * Larger writes reach the file at most this much per pwrite, never across a
 * multiple of it, so the page cache holds their data in folios no larger
 * (the kernel sizes a folio by the write that creates it). ext4 walks every
 * 4 KiB block of a folio on each write into it: after one 1 MiB pwrite, a
 * 4 KiB overwrite there took ~30 µs of kernel time, ~7 µs in 128 KiB folios
 * (bench VM, Linux 6.18); 64 KiB chunks gained little more and cost more
 * per MiB written. (Small writes, up to a track, are chunks already.)
 */
const WRITE_CHUNK_BYTES = 128 * 1024;

async function writeChunked(fd: number, data: Buffer, position: number): Promise<void> {
  const result = await chunkedWrite!(fd, data, position, WRITE_CHUNK_BYTES);
  if (result < 0) throw ioProblem(errnoError(-result, 'write'));
}

const errnoNames = new Map(Object.entries(os.constants.errno).map(([name, value]) => [value, name]));

function errnoError(errno: number, syscall: string): NodeJS.ErrnoException {
  const code = errnoNames.get(errno) ?? 'EIO';
  const error: NodeJS.ErrnoException = new Error(`${code}: ${syscall} failed (errno ${errno})`);
  error.code = code;
  error.errno = -errno;
  error.syscall = syscall;
  return error;
}

export function pwriteAll(fd: number, data: Buffer, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number) => {
      fs.write(fd, data, done, data.length - done, position + done, (error, written) => {
        if (error) return reject(ioProblem(error));
        const total = done + written;
        if (total < data.length) step(total);
        else resolve();
      });
    };
    step(0);
  });
}

export function preadAll(fd: number, target: Buffer, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number) => {
      fs.read(fd, target, done, target.length - done, position + done, (error, read) => {
        if (error) return reject(error);
        const total = done + read;
        if (read === 0) {
          // Past the end of a sparse file: the rest reads as zeroes.
          target.fill(0, total);
          resolve();
        } else if (total < target.length) step(total);
        else resolve();
      });
    };
    step(0);
  });
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
}
