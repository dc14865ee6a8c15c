import { ProblemError } from '@tandem/contract';
import { headExtent, type CdpJournalMeta, type CdpOp, type CdpPoint, type CdpRange, type CdpRun } from '../storage/cdp-meta.ts';
import type { StorageEngine } from '../storage/engine.ts';
import type { MetadataJournal } from '../storage/journal.ts';
import { NO_EXTENT } from '../storage/metadata.ts';
import { RecordType } from '../storage/wal.ts';
import { ImageAccess } from './image.ts';

/**
 * The journal of one replica consistency group at the secondary site (see
 * README.md in this folder for the layout, the records, the I/O count and
 * recovery). Its state lives in the storage engine's metadata
 * (storage/cdp-meta.ts) and changes only through WAL records, so the
 * engine's recovery (checkpoint + WAL replay) is the journal's recovery.
 *
 * Changes (appends, points, distribution, retention) run one at a time in
 * call order; an append or a point resolves once durable (group commit:
 * concurrent appends share fdatasyncs). Images read without waiting.
 */

/** Trims are journaled in records of at most this many tracks (the journal's records stay bounded). */
export const TRIM_PIECE_TRACKS = 4096;
const MAX_BOOKMARK_BYTES = 200;

export interface JournalIoCounts {
  /** Replicated writes and trims appended. */
  appends: number;
  /** pwrites into extent files (each a run of whole tracks). */
  dataWrites: number;
  /** preads of a track's current content (partial-track writes only). */
  dataReads: number;
}

/** One CdpJournal per journal and engine: its change queue is what orders appends. */
const instances = new WeakMap<StorageEngine, Map<number, CdpJournal>>();

export class CdpJournal {
  readonly id: number;
  private readonly engine: StorageEngine;
  private readonly journal: MetadataJournal;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly images = new Set<ImageAccess>();
  /** Data I/O this journal did (not the WAL's own writes). */
  readonly io: JournalIoCounts = { appends: 0, dataWrites: 0, dataReads: 0 };
  /** When retention last dropped points for lack of space (ms since the epoch; 0: never since open). */
  spaceDropAtMs = 0;

  private constructor(engine: StorageEngine, id: number) {
    this.engine = engine;
    this.journal = engine.metadataJournal;
    this.id = id;
  }

  /** Starts a journal for the replica volumes named (one session's consistency group). */
  static async create(engine: StorageEngine, volumes: string[]): Promise<CdpJournal> {
    if (volumes.length === 0) throw new ProblemError('bad-request', 'a journal needs at least one replica volume');
    const ids = volumes.map((name) => engine.volumeId(name));
    const state = engine.metadata;
    for (const other of state.journals.values()) {
      const shared = ids.find((id) => other.volumes.includes(id));
      if (shared !== undefined) throw new ProblemError('already-exists', `volume ${shared} already has journal ${other.id}`);
    }
    const id = Math.max(0, ...state.journals.keys()) + 1;
    const journal = new CdpJournal(engine, id);
    journal.log({ op: 'create', journal: id, volumes: ids });
    CdpJournal.register(engine, journal);
    await engine.flush();
    return journal;
  }

  /** The journal `id` as recovered by the engine at open (the same object on every call). */
  static open(engine: StorageEngine, id: number): CdpJournal {
    if (!engine.metadata.journals.has(id)) throw new ProblemError('not-found', `there is no journal ${id}`);
    return instances.get(engine)?.get(id) ?? CdpJournal.register(engine, new CdpJournal(engine, id));
  }

  private static register(engine: StorageEngine, journal: CdpJournal): CdpJournal {
    let map = instances.get(engine);
    if (!map) {
      map = new Map();
      instances.set(engine, map);
    }
    map.set(journal.id, journal);
    return journal;
  }

  static list(engine: StorageEngine): number[] {
    return [...engine.metadata.journals.keys()];
  }

  /** The journal's metadata (read only). */
  get meta(): CdpJournalMeta {
    const meta = this.engine.metadata.journals.get(this.id);
    if (!meta) throw new ProblemError('not-found', `journal ${this.id} was deleted`);
    return meta;
  }

  get trackSize(): number {
    return this.engine.trackSize;
  }

  private log(op: CdpOp): void {
    this.journal.log({ type: RecordType.Cdp, op });
  }

  /** Runs `work` after every change queued before it. */
  private serial<T>(work: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(work);
    this.tail = result.catch(() => {});
    return result;
  }

  private checkRange(volume: number, offset: number, length: number): void {
    if (!this.meta.volumes.includes(volume)) throw new ProblemError('not-found', `volume ${volume} is not in journal ${this.id}`);
    const size = this.engine.metadata.volume(volume).sizeBytes;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0 || offset + length > size) {
      throw new ProblemError('out-of-range', `${length} bytes at ${offset} do not fit volume ${volume} (${size} bytes)`);
    }
  }

  // --- the do stream ---

  /**
   * Appends a replicated write: its tracks' new content goes into newly
   * allocated extents (one pwrite per run of consecutive extents; a track
   * the write covers only partly is first read from its current content),
   * then one WAL record names them. Resolves with the record's sequence
   * number once durable; with `durable: false` once logged (durable with
   * the next commit: any durable append, `flush`, or the engine's timer),
   * as a volume write without FUA is durable with the next flush.
   */
  async write(volume: number, offset: number, data: Buffer, timeMs = Date.now(), options: { durable?: boolean } = {}): Promise<number> {
    this.checkRange(volume, offset, data.length);
    const seq = await this.serial(async () => {
      const runs = await this.writeTracks(volume, offset, data);
      this.log({ op: 'write', journal: this.id, volume, timeMs, runs });
      this.io.appends++;
      return this.meta.lastSeq;
    });
    if (options.durable !== false) await this.journal.commit();
    return seq;
  }

  /**
   * Appends a replicated trim: whole tracks as trim records (no zeroes
   * written; at most TRIM_PIECE_TRACKS per record), partial tracks at the
   * ends as writes of zeroes over their content. What the trim frees stays
   * as undo once distributed. Resolves with the last record's number once
   * durable (with `durable: false`: once logged, as `write`).
   */
  async trim(volume: number, offset: number, length: number, timeMs = Date.now(), options: { durable?: boolean } = {}): Promise<number> {
    this.checkRange(volume, offset, length);
    const seq = await this.serial(async () => {
      const { trackSize } = this;
      const end = offset + length;
      const fullStart = Math.ceil(offset / trackSize);
      const fullEnd = Math.floor(end / trackSize);
      // The partial tracks at the ends (empty ranges where an end is on a track boundary).
      const boundary = Math.min(end, (Math.floor(offset / trackSize) + 1) * trackSize);
      const partial: Array<[number, number]> =
        fullStart < fullEnd ? [[offset, fullStart * trackSize], [fullEnd * trackSize, end]] : [[offset, boundary], [boundary, end]];
      for (const [from, to] of partial) {
        if (from >= to || headExtent(this.engine.metadata, this.meta, volume, Math.floor(from / trackSize)) === NO_EXTENT) continue;
        const runs = await this.writeTracks(volume, from, Buffer.alloc(to - from));
        this.log({ op: 'write', journal: this.id, volume, timeMs, runs });
      }
      for (let track = fullStart; track < fullEnd; track += TRIM_PIECE_TRACKS) {
        this.log({ op: 'trim', journal: this.id, volume, track, count: Math.min(TRIM_PIECE_TRACKS, fullEnd - track), timeMs });
      }
      this.io.appends++;
      return this.meta.lastSeq;
    });
    if (options.durable !== false) await this.journal.commit();
    return seq;
  }

  /** Writes the tracks `data` touches into new extents; returns the runs for the record. */
  private async writeTracks(volume: number, offset: number, data: Buffer): Promise<CdpRun[]> {
    const { journal, trackSize } = this;
    const end = offset + data.length;
    const first = Math.floor(offset / trackSize);
    const last = Math.floor((end - 1) / trackSize);
    const runs: CdpRun[] = [];
    try {
      for (let track = first; track <= last; ) {
        const run = journal.allocator.allocateRun(last + 1 - track, (e) => journal.extents.runLimit(e));
        runs.push({ track, count: run.count, extent: run.start });
        const runStart = track * trackSize;
        const runStop = (track + run.count) * trackSize;
        let payload: Buffer;
        if (runStart >= offset && runStop <= end) {
          payload = data.subarray(runStart - offset, runStop - offset);
        } else {
          payload = Buffer.allocUnsafe(run.count * trackSize);
          const state = this.engine.metadata;
          const partial = [...new Set([track, track + run.count - 1])].filter((edge) => !(edge * trackSize >= offset && (edge + 1) * trackSize <= end));
          const heads = partial.map((edge) => headExtent(state, this.meta, volume, edge));
          const reads: Promise<void>[] = [];
          if (partial.length === 2 && run.count === 2 && heads[0] !== NO_EXTENT && heads[1] === heads[0] + 1 && journal.extents.runLimit(heads[0]) >= 2) {
            // Both ends of a write across one track boundary, held in consecutive extents: one pread.
            reads.push(this.readExtent(heads[0], payload));
          } else {
            partial.forEach((edge, i) => {
              reads.push(this.readExtent(heads[i], payload.subarray((edge - track) * trackSize, (edge - track + 1) * trackSize)));
            });
          }
          await Promise.all(reads);
          const from = Math.max(offset, runStart);
          const to = Math.min(end, runStop);
          data.copy(payload, from - runStart, from - offset, to - offset);
        }
        await journal.extents.write(run.start, 0, payload);
        this.io.dataWrites++;
        track += run.count;
      }
    } catch (error) {
      for (const run of runs) for (let i = 0; i < run.count; i++) journal.allocator.release(run.extent + i);
      throw error;
    }
    return runs;
  }

  /** Reads an extent's track (zeroes for none) under a read epoch. */
  async readExtent(extent: number, into: Buffer, within = 0): Promise<void> {
    if (extent === NO_EXTENT) {
      into.fill(0);
      return;
    }
    const epoch = this.journal.beginRead();
    try {
      await this.journal.extents.read(extent, within, into);
      this.io.dataReads++;
    } finally {
      this.journal.endRead(epoch);
    }
  }

  // --- points ---

  /**
   * Marks a point in time (an async round or shipping cycle; for sync and
   * semi-sync, any write): the image of every record appended so far. A
   * name makes it a bookmark. Resolves once durable.
   */
  async markPoint(options: { timeMs?: number; name?: string } = {}): Promise<CdpPoint> {
    const name = options.name ?? null;
    if (name !== null && (name.length === 0 || Buffer.byteLength(name, 'utf8') > MAX_BOOKMARK_BYTES)) {
      throw new ProblemError('invalid-name', `a bookmark name takes 1 to ${MAX_BOOKMARK_BYTES} bytes`);
    }
    const point = await this.serial(() => {
      this.log({ op: 'point', journal: this.id, timeMs: options.timeMs ?? Date.now(), name });
      return { ...this.meta.points[this.meta.points.length - 1] };
    });
    await this.journal.commit();
    return point;
  }

  /** The retained points, oldest first. */
  points(): CdpPoint[] {
    return this.meta.points.map((point) => ({ ...point }));
  }

  // --- distribution ---

  /**
   * Distributes undistributed records to the replica, oldest first (at
   * least `maxEntries` track entries when given, whole records; up to
   * record `upto` when given): a pointer move per track, no data I/O.
   * Durable with the next commit (`durable: true` waits for it); a crash
   * before replays the records as undistributed. Returns the entries moved.
   */
  distribute(options: { maxEntries?: number; upto?: number; durable?: boolean } = {}): Promise<number> {
    return this.serial(async () => {
      const pending = this.meta.pending;
      let count = Math.min(options.maxEntries ?? pending.length, pending.length);
      if (options.upto !== undefined) {
        let within = 0;
        while (within < pending.length && pending[within].seq <= options.upto) within++;
        count = Math.min(count, within);
      }
      if (count === 0) return 0;
      const moved = this.logDistribute(pending[count - 1].seq);
      if (options.durable) await this.journal.commit();
      return moved;
    });
  }

  /** Logs the distribution of every record up to `upto` (segment codes of the tracks it changes go invalid); returns the entries moved. */
  private logDistribute(upto: number): number {
    const pending = this.meta.pending;
    let moved = 0;
    while (moved < pending.length && pending[moved].seq <= upto) {
      const entry = pending[moved++];
      this.engine.codes.invalidate(entry.volume, entry.track, entry.track + 1);
    }
    if (moved > 0) this.log({ op: 'distribute', journal: this.id, upto });
    return moved;
  }

  // --- retention (policy in retention.ts) ---

  /** Lowest sequence number an open image reads at (Infinity when none is open). */
  get protectedSeq(): number {
    let lowest = Infinity;
    for (const image of this.images) lowest = Math.min(lowest, image.seq);
    return lowest;
  }

  /** Sequence numbers open images read at. */
  protectedSeqs(): number[] {
    return [...this.images].map((image) => image.seq);
  }

  /**
   * Drops every point before `floor` and the undo only they needed (freed
   * once durable). Never past a point an open image reads. Returns the floor set.
   */
  release(floor: number): Promise<number> {
    return this.serial(() => {
      const target = Math.min(floor, this.protectedSeq, this.meta.lastSeq);
      if (target > this.meta.floor) this.log({ op: 'release', journal: this.id, floor: target });
      return this.meta.floor;
    });
  }

  /**
   * Drops the points strictly between `from` and `to` (both distributed
   * sequence numbers) and the undo only they needed, for each range (in
   * order, not overlapping; one record for all). A range over an open
   * image's point or undistributed records is left out. Returns the ranges
   * consolidated.
   */
  consolidate(ranges: CdpRange[]): Promise<CdpRange[]> {
    return this.serial(() => {
      const meta = this.meta;
      const images = this.protectedSeqs();
      const done: CdpRange[] = [];
      for (const { from, to } of ranges) {
        const previous = done[done.length - 1];
        if (from >= to || to > meta.distributedSeq || from < meta.floor || (previous && from < previous.to)) continue;
        if (images.some((seq) => seq > from && seq < to)) continue;
        done.push({ from, to });
      }
      if (done.length > 0) this.log({ op: 'consolidate', journal: this.id, ranges: done });
      return done;
    });
  }

  /** Makes every change so far durable. */
  flush(): Promise<void> {
    return this.serial(() => this.journal.commit());
  }

  // --- image access ---

  /**
   * A read-write view of the replica group as of point `seq` (any retained
   * point, or the head: meta.lastSeq), built from pointers when read:
   * opening costs nothing whatever the depth. Its writes go to extents of
   * its own, never logged, given back at close (or by a crash). The point
   * is kept (retention stops at it) until the view closes.
   */
  openImage(seq: number): ImageAccess {
    const meta = this.meta;
    if (!Number.isSafeInteger(seq) || seq < meta.floor || seq > meta.lastSeq) {
      throw new ProblemError('out-of-range', `journal ${this.id} holds points ${meta.floor} to ${meta.lastSeq}; not ${seq}`);
    }
    const image = new ImageAccess(this.engine, this, seq, () => this.images.delete(image));
    this.images.add(image);
    return image;
  }

  /**
   * Ends the journal: distributes what is left (the replica then holds
   * every record appended) and frees every extent it holds, closing open images.
   */
  async delete(): Promise<void> {
    await this.serial(async () => {
      for (const image of [...this.images]) await image.close();
      this.logDistribute(this.meta.lastSeq);
      this.log({ op: 'delete', journal: this.id });
      instances.get(this.engine)?.delete(this.id);
      await this.journal.commit();
    });
  }
}
