import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ExtentAllocator } from './allocator.ts';
import { readCheckpoint, serializeCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { syncDirectory } from './durable-file.ts';
import { ExtentStore, pwriteAll } from './extent-store.ts';
import { Chunk, MetadataState, type MetadataListener, type VolumeMeta } from './metadata.ts';
import type { StorageMeter } from './meter.ts';
import { SerialRuns } from './serial-runs.ts';
import {
  applyRecord,
  decodeSegment,
  encodedSize,
  encodeRecord,
  listSegments,
  segmentHeader,
  segmentName,
  WAL_HEADER_BYTES,
  type WalRecord,
} from './wal.ts';

/** Records buffered beyond this many bytes trigger a commit at once. */
const EAGER_COMMIT_BYTES = 1 << 20;
/**
 * Buffered records wait at most this long for a commit (like ext4's 5 s
 * journal commit). Durability is what FLUSH and FUA ask for; until then a
 * lost record only means a track reads its old content. A commit syncs the
 * data files first, so committing often under a steady writer that never
 * flushes costs an fdatasync of everything written meanwhile each time.
 */
const COMMIT_DELAY_MS = 5000;
/** A checkpoint is taken once this much WAL has accumulated. */
const CHECKPOINT_WAL_BYTES = 64 << 20;

export interface RecoveryReport {
  checkpointGeneration: number;
  replayedRecords: number;
  replayedSegments: number;
  tornBytes: number;
}

/**
 * The durable side of the metadata: applies each change to the in-memory
 * state at once, buffers its WAL record, and makes batches durable by group
 * commit (data files fdatasync'd first, then the WAL), so metadata is never
 * durable before the data it describes.
 *
 * Until the commit that carries them completes, reference drops are pinned:
 * a pinned chunk or extent still counts as shared (writes go elsewhere) and a
 * freed extent is not handed out again. After the commit, freed extents also
 * wait for reads that began before it (read epochs), so a read in flight
 * never sees an extent reused under it.
 */
export class MetadataJournal implements MetadataListener {
  readonly state: MetadataState;
  readonly extents: ExtentStore;
  readonly allocator: ExtentAllocator;
  readonly recovery: RecoveryReport;
  private readonly metaDir: string;

  private walFd: number;
  private walGeneration: number;
  private walOffset: number;
  private walBytesSinceCheckpoint = 0;

  private buffer = Buffer.allocUnsafe(64 * 1024);
  private bufferUsed = 0;
  /** Generation of the records now being buffered; pins made now end when it commits. */
  private bufferGeneration = 1;
  private readonly pinnedExtents = new Map<number, number>();
  private readonly pinnedChunks = new Map<Chunk, number>();
  private readonly pinLists = new Map<number, { extents: number[]; chunks: Chunk[]; freed: number[] }>();

  private readEpoch = 0;
  private readonly readsByEpoch = new Map<number, number>();
  private readonly quarantine: Array<{ epoch: number; extents: number[] }> = [];

  /** Group commits: one at a time, callers meanwhile share the next. */
  private readonly commits = new SerialRuns({
    run: () => {
      const checkpoint = this.queuedCheckpoint || this.walBytesSinceCheckpoint >= CHECKPOINT_WAL_BYTES;
      this.queuedCheckpoint = false;
      return this.runCommit(checkpoint);
    },
    failure: () => this.failure ?? (this.final ? new Error('the metadata journal is closed') : null),
  });
  private queuedCheckpoint = false;
  private meter: StorageMeter | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failure: Error | null = null;
  /** No new records (closing, closed or abandoned). */
  private closed = false;
  /** Close or abandon owns the files: no commit starts any more (one due to start rejects). */
  private final = false;
  private closing: Promise<void> | null = null;

  private constructor(
    metaDir: string,
    state: MetadataState,
    extents: ExtentStore,
    allocator: ExtentAllocator,
    wal: { fd: number; generation: number },
    recovery: RecoveryReport,
  ) {
    this.metaDir = metaDir;
    this.state = state;
    this.extents = extents;
    this.allocator = allocator;
    this.walFd = wal.fd;
    this.walGeneration = wal.generation;
    this.walOffset = WAL_HEADER_BYTES;
    this.recovery = recovery;
    state.listener = this;
  }

  /** Loads the checkpoint, replays the WAL, then starts a fresh segment behind a new checkpoint. */
  static async open(metaDir: string, poolDir: string): Promise<MetadataJournal> {
    const { state, walGeneration } = await readCheckpoint(metaDir);
    const segments = (await listSegments(metaDir)).filter((g) => g >= walGeneration);
    let replayed = 0;
    let torn = 0;
    for (const generation of segments) {
      const decoded = decodeSegment(await fsp.readFile(path.join(metaDir, segmentName(generation))));
      for (const record of decoded.records) applyRecord(state, record);
      replayed += decoded.records.length;
      torn += decoded.tornBytes;
    }
    const { store, spannedExtents } = await ExtentStore.open(poolDir, state.trackSize);
    const allocator = new ExtentAllocator(Math.max(spannedExtents, state.extentHighWater()), (e) =>
      e < state.refcounts.length ? state.refcounts[e] > 0 : false,
    );
    const generation = Math.max(walGeneration, ...segments) + 1;
    const fd = await createSegment(metaDir, generation);
    await writeCheckpoint(metaDir, serializeCheckpoint(state, generation));
    await removeSegmentsBefore(metaDir, generation);
    return new MetadataJournal(metaDir, state, store, allocator, { fd, generation }, {
      checkpointGeneration: walGeneration,
      replayedRecords: replayed,
      replayedSegments: segments.length,
      tornBytes: torn,
    });
  }

  // --- logging ---

  /** Applies a change and buffers its record. The change is durable after the next commit. */
  log(record: WalRecord): void {
    this.assertUsable();
    const size = encodedSize(record);
    if (this.bufferUsed + size > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.bufferUsed + size));
      this.buffer.copy(grown, 0, 0, this.bufferUsed);
      this.buffer = grown;
    }
    applyRecord(this.state, record);
    this.bufferUsed = encodeRecord(record, this.buffer, this.bufferUsed);
    if (this.bufferUsed >= EAGER_COMMIT_BYTES) void this.commit().catch(() => {});
    else this.scheduleCommit();
  }

  private scheduleCommit(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.commit().catch(() => {});
    }, COMMIT_DELAY_MS);
    this.timer.unref();
  }

  // --- MetadataListener: pins ---

  private pinList(): { extents: number[]; chunks: Chunk[]; freed: number[] } {
    let list = this.pinLists.get(this.bufferGeneration);
    if (!list) {
      list = { extents: [], chunks: [], freed: [] };
      this.pinLists.set(this.bufferGeneration, list);
    }
    return list;
  }

  extentDereferenced(extent: number, remaining: number): void {
    const list = this.pinList();
    this.pinnedExtents.set(extent, this.bufferGeneration);
    list.extents.push(extent);
    if (remaining === 0) list.freed.push(extent);
  }

  chunkDereferenced(chunk: Chunk): void {
    this.pinnedChunks.set(chunk, this.bufferGeneration);
    this.pinList().chunks.push(chunk);
  }

  extentReferenced(): void {}

  /** True when a write may overwrite this track's extent in place. */
  canWriteInPlace(volume: VolumeMeta, track: number, extent: number): boolean {
    if (!this.state.isExclusive(volume, track)) return false;
    if (this.pinnedExtents.size > 0 && this.pinnedExtents.has(extent)) return false;
    if (this.pinnedChunks.size > 0 && this.pinnedChunks.has(this.state.chunkOf(volume, track)!)) return false;
    return true;
  }

  // --- read epochs ---

  beginRead(): number {
    const epoch = this.readEpoch;
    this.readsByEpoch.set(epoch, (this.readsByEpoch.get(epoch) ?? 0) + 1);
    return epoch;
  }

  endRead(epoch: number): void {
    const count = this.readsByEpoch.get(epoch)! - 1;
    if (count === 0) this.readsByEpoch.delete(epoch);
    else this.readsByEpoch.set(epoch, count);
    if (this.quarantine.length > 0) this.releaseQuarantine();
  }

  private releaseQuarantine(): void {
    let oldestRead = Infinity;
    for (const epoch of this.readsByEpoch.keys()) if (epoch < oldestRead) oldestRead = epoch;
    while (this.quarantine.length > 0 && this.quarantine[0].epoch < oldestRead) {
      for (const extent of this.quarantine.shift()!.extents) {
        // An extent referenced again since (cannot happen today) stays in use.
        if (this.state.refcounts[extent] === 0) this.allocator.release(extent);
      }
    }
  }

  // --- group commit ---

  /**
   * Makes every record logged and every data write completed before this
   * call durable. Concurrent callers share commits.
   */
  commit(options: { checkpoint?: boolean } = {}): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (options.checkpoint) this.queuedCheckpoint = true;
    return this.commits.request();
  }

  /** Reports WAL commits and fdatasync times (of the WAL and the extent files) to `meter` from now on. */
  setMeter(meter: StorageMeter | null): void {
    this.meter = meter;
    this.extents.meter = meter;
  }

  private async runCommit(checkpoint: boolean): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const generation = this.bufferGeneration++;
    const records = Buffer.from(this.buffer.subarray(0, this.bufferUsed));
    this.bufferUsed = 0;
    const oldFd = this.walFd;
    const writeAt = this.walOffset;
    this.walOffset += records.length;
    this.walBytesSinceCheckpoint += records.length;
    let image: Buffer | undefined;
    let nextGeneration = 0;
    if (checkpoint) {
      // The switch point: the image holds every record logged so far; later
      // records go to the next segment.
      nextGeneration = this.walGeneration + 1;
      image = serializeCheckpoint(this.state, nextGeneration);
      this.walGeneration = nextGeneration;
      this.walOffset = WAL_HEADER_BYTES;
      this.walBytesSinceCheckpoint = 0;
    }
    try {
      await this.extents.syncData();
      if (records.length > 0) {
        await pwriteAll(oldFd, records, writeAt);
        const started = this.meter === null ? 0 : performance.now();
        await fdatasync(oldFd);
        if (this.meter !== null) {
          this.meter.synced('wal', (performance.now() - started) / 1000);
          this.meter.walCommitted();
        }
      }
      if (image) {
        this.walFd = await createSegment(this.metaDir, nextGeneration);
        await writeCheckpoint(this.metaDir, image);
        fs.closeSync(oldFd);
        await removeSegmentsBefore(this.metaDir, nextGeneration);
      }
    } catch (error) {
      // A WAL that cannot be written leaves the metadata in doubt: stop taking changes.
      this.failure = error instanceof Error ? error : new Error(String(error));
      throw this.failure;
    }
    this.unpin(generation);
  }

  private unpin(generation: number): void {
    const list = this.pinLists.get(generation);
    if (!list) return;
    this.pinLists.delete(generation);
    for (const extent of list.extents) {
      if (this.pinnedExtents.get(extent) === generation) this.pinnedExtents.delete(extent);
    }
    for (const chunk of list.chunks) {
      if (this.pinnedChunks.get(chunk) === generation) this.pinnedChunks.delete(chunk);
    }
    if (list.freed.length > 0) {
      this.quarantine.push({ epoch: this.readEpoch, extents: list.freed });
      this.readEpoch++;
      this.releaseQuarantine();
    }
  }

  get pendingRecordBytes(): number {
    return this.bufferUsed;
  }

  private assertUsable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new Error('the metadata journal is closed');
  }

  /**
   * Waits until no commit runs or is queued (one that starts meanwhile is
   * waited for too). A commit runs only the journal's own file I/O, never a
   * caller's code, so close or abandon cannot be called from inside one; a
   * caller continuing after a commit settled runs once that commit has left
   * `running` (SerialRuns clears it first), so it does not wait for itself.
   */
  private quiesce(): Promise<void> {
    return this.commits.idle();
  }

  /**
   * Commits with a checkpoint and closes every file. Records logged before
   * the call are in the checkpoint; logging after it throws. Commits
   * requested before it complete; one requested later may be refused. A
   * second call settles with the first (after an abandon: at once).
   */
  close(): Promise<void> {
    this.closing ??= this.closed ? Promise.resolve() : this.closeFiles();
    return this.closing;
  }

  private async closeFiles(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.commit({ checkpoint: true });
    // No commit starts from now on; one requested meanwhile that already started completes
    // before the files close (it would otherwise write to a closed, perhaps reused, descriptor).
    this.final = true;
    await this.quiesce();
    fs.closeSync(this.walFd);
    this.extents.close();
  }

  /**
   * For crash tests: stop as `kill -9` would. Buffered records are lost, but
   * what was already handed to the kernel stays, as the page cache would keep
   * it. `keepBytes` writes that many bytes of the pending records first, to
   * model a torn group commit.
   */
  async abandon(keepBytes = 0): Promise<void> {
    this.closed = true;
    this.final = true;
    if (this.timer) clearTimeout(this.timer);
    // A commit already handed to the kernel completes, as it would after kill -9
    // (and its file descriptors must not be reused under it); one queued behind
    // it does not start (it rejects): nothing reaches the disk after the crash.
    await this.quiesce();
    const keep = Math.min(keepBytes, this.bufferUsed);
    if (keep > 0) fs.writeSync(this.walFd, this.buffer, 0, keep, this.walOffset);
    fs.closeSync(this.walFd);
    this.extents.close();
  }
}

async function createSegment(metaDir: string, generation: number): Promise<number> {
  const file = path.join(metaDir, segmentName(generation));
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o600);
  await pwriteAll(fd, segmentHeader(generation), 0);
  await fdatasync(fd);
  await syncDirectory(metaDir);
  return fd;
}

async function removeSegmentsBefore(metaDir: string, generation: number): Promise<void> {
  for (const old of await listSegments(metaDir)) {
    if (old < generation) await fsp.unlink(path.join(metaDir, segmentName(old)));
  }
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
}
