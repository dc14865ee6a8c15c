import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { syncDirectory } from './durable-file.ts';
import { pwriteAll } from './extent-store.ts';
import { SerialRuns } from './serial-runs.ts';

/**
 * The activity log of the out-of-sync bitmaps (DRBD's activity log,
 * `al-extents`): the coarse regions (4 MiB by default) where host writes may
 * be going on, kept durably in a small file of its own.
 *
 * A host write to a mirrored or suspended pair sets its tracks' bits in
 * memory (the bitmap's WAL record is written with the next metadata commit)
 * and waits only until its region is in this log durably. A region already
 * in the log costs nothing; a region not in it costs one small synchronous
 * write, shared by every writer waiting at that moment. After a crash every
 * track of every region in the log counts as out-of-sync (`TrackBitmaps`
 * sets them before anything reads the bitmaps), so the bitmaps still cover
 * every track that might differ, plus a few regions more.
 *
 * A region leaves the log (least recently used beyond `maxRegions`, or idle
 * for `idleMs`) only after a metadata commit that started after its last
 * write was covered: that commit makes the data written so far durable, then
 * the bits (set ones, and clears of tracks found in sync). Only then is the
 * log rewritten without it.
 *
 * Why a file of its own rather than a WAL record kind: the order is the
 * opposite of the metadata journal's. A metadata commit makes the data files
 * durable first and the records after them (metadata never ahead of its
 * data); an activity record must be durable *before* the data write it
 * covers is even issued. Logged in the WAL it would wait for an fdatasync of
 * every data file per activation, and tie the host's write latency to the
 * group commit of VTT records.
 *
 * Why durable before the local write, and not merely written (synced by the
 * next FLUSH or FUA like the data): after `kill -9` whatever was written
 * survives in the page cache, so a written record would do. After a power
 * loss it would not: the kernel writes dirty pages back in any order, so an
 * in-place overwrite of a track (which needs no metadata at all) can reach
 * the disk while the activity record covering it does not. The host was not
 * promised that write, but the two sites would then differ on a track no
 * bitmap names, and no resync would ever copy it. So a region is activated
 * with a synchronous write (O_DSYNC) before the first data write into it.
 *
 * File format (`meta/activity-log`): two slots of SLOT_BYTES, written in
 * turn; each holds the whole active set:
 *   u32 magic | u16 version | u16 0 | u64 sequence | u32 regionTracks |
 *   u32 count | u32 crc32c(header before it + entries) | u32 0 |
 *   count × (u32 bitmap, u32 region)
 * Recovery takes the valid slot with the highest sequence. A torn write
 * spoils only the slot being written; the other holds the previous set,
 * which covers every region whose writes had started (they waited for it).
 */

export const ACTIVITY_LOG_FILE = 'activity-log';
const MAGIC = 0x314c4154; // 'TAL1'
const VERSION = 1;
const HEADER_BYTES = 32;
export const SLOT_BYTES = 64 * 1024;
/** Entries one slot can hold. */
const SLOT_CAPACITY = (SLOT_BYTES - HEADER_BYTES) / 8;
/** Largest `maxRegions`: leaves room in a slot for regions being activated beyond it. */
export const MAX_ACTIVE_REGIONS = SLOT_CAPACITY >> 1;
/** Idle sweeps a region must sit out before it leaves (so it was idle between idleMs / 2 and idleMs). */
const IDLE_TICKS = 2;

export interface ActivityLogOptions {
  /** Tracks per region. */
  regionTracks: number;
  /** Regions kept active at most (least recently used leave first), beyond those being activated. */
  maxRegions: number;
  /** A region untouched about this long leaves the log; 0: only when evicted. */
  idleMs: number;
}

/**
 * Defaults: 4 MiB regions, 1024 of them (4 GiB written recently costs no
 * activation; a crash resyncs at most that much more than was written),
 * idle regions leave after about 5 s. TANDEM_ACTIVITY_REGION_BYTES,
 * TANDEM_ACTIVITY_MAX_REGIONS and TANDEM_ACTIVITY_IDLE_MS change them.
 */
export function activityLogOptions(trackSize: number, env: NodeJS.ProcessEnv = process.env): ActivityLogOptions {
  const number = (name: string, fallback: number) => {
    const value = Number(env[name]);
    return env[name] !== undefined && env[name] !== '' && Number.isFinite(value) && value >= 0 ? value : fallback;
  };
  const regionBytes = number('TANDEM_ACTIVITY_REGION_BYTES', 4 << 20);
  return {
    regionTracks: Math.max(1, Math.floor(regionBytes / trackSize)),
    maxRegions: Math.min(MAX_ACTIVE_REGIONS, Math.max(2, Math.floor(number('TANDEM_ACTIVITY_MAX_REGIONS', 1024)))),
    idleMs: number('TANDEM_ACTIVITY_IDLE_MS', 5000),
  };
}

/** What a log held when it was opened: every track of these regions may differ. */
export interface ActivityLogContents {
  sequence: number;
  regionTracks: number;
  regions: Array<{ bitmap: number; region: number }>;
}

interface Region {
  bitmap: number;
  index: number;
  /** Activation clock value of the last cover (LRU order; "touched since" checks). */
  lastUse: number;
  /** Idle-sweep tick of the last cover. */
  lastTick: number;
  /** In the slot last written. */
  durable: boolean;
  /** The transaction that writes it, while it is not durable. */
  ready: Promise<void> | null;
}

const DONE: Promise<void> = Promise.resolve();

export class ActivityLog {
  private fd: number | null;
  private sequence: number;
  /** Active regions per bitmap: durable ones and those being activated. */
  private readonly regions = new Map<number, Map<number, Region>>();
  private count = 0;
  private clock = 0;
  private tick = 0;
  private retireIdle = false;
  /** Transactions: one at a time, activations meanwhile share the next. */
  private readonly serial = new SerialRuns({
    run: () => this.transaction(),
    failure: () => this.failure ?? (this.final ? new Error('the activity log is closed') : null),
    started: (run) => {
      this.joinable = run;
    },
    settled: (run) => {
      if (this.joinable === run) this.joinable = null;
    },
  });
  /** The running transaction while it has not taken its snapshot yet: new activations join it. */
  private joinable: Promise<void> | null = null;
  private failure: Error | null = null;
  /** No new activity (shutting down or crashed). */
  private closing = false;
  /** Close or abandon owns the file: no transaction starts, and one taken over in its commit writes nothing. */
  private final = false;
  /** The running transaction is in its metadata commit (the one place it runs code other than its own). */
  private persisting = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout | null = null;
  /** Slots written (for tests and diagnostics). */
  transactions = 0;

  private constructor(
    private readonly file: string,
    fd: number | null,
    sequence: number,
    readonly options: ActivityLogOptions,
    /** Makes every bit logged and every data write completed before the call durable (a metadata commit). */
    private readonly persist: () => Promise<void>,
  ) {
    this.fd = fd;
    this.sequence = sequence;
    if (options.idleMs > 0) {
      this.timer = setInterval(() => this.idleSweep().catch(() => {}), Math.max(1, options.idleMs / IDLE_TICKS));
      this.timer.unref();
    }
  }

  /** Reads what the log in `metaDir` holds (empty when there is none). */
  static async read(metaDir: string): Promise<ActivityLogContents> {
    let image: Buffer;
    try {
      image = await fsp.readFile(path.join(metaDir, ACTIVITY_LOG_FILE));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { sequence: 0, regionTracks: 1, regions: [] };
      throw error;
    }
    let best: ActivityLogContents = { sequence: 0, regionTracks: 1, regions: [] };
    for (let slot = 0; slot < 2; slot++) {
      const decoded = decodeSlot(image.subarray(slot * SLOT_BYTES, (slot + 1) * SLOT_BYTES));
      if (decoded && decoded.sequence > best.sequence) best = decoded;
    }
    return best;
  }

  /**
   * Opens the log for new activity. The caller has made the regions of
   * `previous` durable in the bitmaps; when it held any, the log is emptied
   * first.
   */
  static async open(
    metaDir: string,
    previous: ActivityLogContents,
    options: ActivityLogOptions,
    persist: () => Promise<void>,
  ): Promise<ActivityLog> {
    const file = path.join(metaDir, ACTIVITY_LOG_FILE);
    const exists = previous.sequence > 0 || fs.existsSync(file);
    const fd = exists ? fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_DSYNC) : null;
    const log = new ActivityLog(file, fd, previous.sequence, options, persist);
    if (previous.regions.length > 0) await log.writeSlot([]);
    return log;
  }

  /** Regions in the log or being activated. */
  get activeRegions(): number {
    return this.count;
  }

  /** Regions of one bitmap in the log or being activated (for tests and diagnostics). */
  regionsOf(bitmap: number): number[] {
    return [...(this.regions.get(bitmap)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /**
   * Tracks [first, end) of `bitmap` are about to be written: settles once
   * their regions are durably in the log (at once when they are). Returns
   * null when the span is too wide for the log (more regions than it may
   * hold): the caller then makes the bits durable itself.
   */
  cover(bitmap: number, first: number, end: number): Promise<void> | null {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new Error('the activity log is closed'));
    const regionTracks = this.options.regionTracks;
    const firstRegion = Math.floor(first / regionTracks);
    const lastRegion = Math.floor((Math.max(end, first + 1) - 1) / regionTracks);
    let regions = this.regions.get(bitmap);
    if (lastRegion - firstRegion >= this.options.maxRegions || this.count + (lastRegion - firstRegion + 1) > SLOT_CAPACITY) {
      // Check that nothing new is needed before refusing (a wide span over active regions is fine).
      let missing = 0;
      for (let index = firstRegion; index <= lastRegion; index++) if (!regions?.get(index)) missing++;
      if (missing > 0 && (lastRegion - firstRegion >= this.options.maxRegions || this.count + missing > SLOT_CAPACITY)) return null;
    }
    if (!regions) {
      regions = new Map();
      this.regions.set(bitmap, regions);
    }
    let wait: Promise<void> | null = null;
    for (let index = firstRegion; index <= lastRegion; index++) {
      let region = regions.get(index);
      if (!region) {
        region = { bitmap, index, lastUse: 0, lastTick: 0, durable: false, ready: null };
        regions.set(index, region);
        this.count++;
      }
      region.lastUse = ++this.clock;
      region.lastTick = this.tick;
      if (region.durable) continue;
      region.ready ??= this.requestTransaction();
      wait = wait && wait !== region.ready ? Promise.all([wait, region.ready]).then(() => {}) : region.ready;
    }
    return wait ?? DONE;
  }

  /** Whether `cover` would settle at once: every region of the span is durably in the log. Changes nothing. */
  coveredNow(bitmap: number, first: number, end: number): boolean {
    if (this.failure || this.closing) return false;
    const regions = this.regions.get(bitmap);
    if (!regions) return false;
    const regionTracks = this.options.regionTracks;
    const lastRegion = Math.floor((Math.max(end, first + 1) - 1) / regionTracks);
    for (let index = Math.floor(first / regionTracks); index <= lastRegion; index++) if (!regions.get(index)?.durable) return false;
    return true;
  }

  /** Settles when no transaction is running or queued (for tests). */
  settled(): Promise<void> {
    return this.serial.idle();
  }

  /** One tick of the idle clock; regions untouched for IDLE_TICKS ticks leave the log. */
  async idleSweep(): Promise<void> {
    if (this.closing || this.failure) return;
    this.tick++;
    for (const regions of this.regions.values()) {
      for (const region of regions.values()) {
        if (region.durable && this.tick - region.lastTick >= IDLE_TICKS) {
          this.retireIdle = true;
          await this.requestTransaction();
          return;
        }
      }
    }
  }

  // --- transactions (one at a time; concurrent activations share one) ---

  private requestTransaction(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.joinable) return this.joinable;
    return this.serial.request();
  }

  private async transaction(): Promise<void> {
    try {
      // Writers arriving in the same turn of the event loop share this transaction.
      await null;
      this.assertActive();
      const leaving = this.chooseLeaving();
      if (leaving.length > 0) {
        const mark = this.clock;
        this.persisting = true;
        try {
          await this.persist();
        } finally {
          this.persisting = false;
        }
        this.assertActive();
        // A region covered again since the commit started holds bits that commit may lack: it stays.
        for (const region of leaving) {
          const regions = this.regions.get(region.bitmap);
          if (region.lastUse > mark || regions?.get(region.index) !== region) continue;
          regions.delete(region.index);
          if (regions.size === 0) this.regions.delete(region.bitmap);
          this.count--;
        }
      }
      this.joinable = null;
      const included: Region[] = [];
      let activated = false;
      for (const regions of this.regions.values()) {
        for (const region of regions.values()) {
          included.push(region);
          if (!region.durable) activated = true;
        }
      }
      this.assertActive();
      await this.writeSlot(included);
      for (const region of included) {
        region.durable = true;
        region.ready = null;
      }
      // Activations beyond the limit (nothing durable was left to evict first): evict them next.
      if (activated && this.count > this.options.maxRegions) void this.requestTransaction().catch(() => {});
    } catch (error) {
      if (!this.final) this.failure ??= error instanceof Error ? error : new Error(String(error));
      throw error;
    }
  }

  /** Durable regions that may leave now: idle ones (when asked), then least recently used beyond `maxRegions`. */
  private chooseLeaving(): Region[] {
    const retire = this.retireIdle;
    this.retireIdle = false;
    const leaving: Region[] = [];
    const others: Region[] = [];
    for (const regions of this.regions.values()) {
      for (const region of regions.values()) {
        if (!region.durable) continue;
        if (retire && this.tick - region.lastTick >= IDLE_TICKS) leaving.push(region);
        else others.push(region);
      }
    }
    const excess = this.count - leaving.length - this.options.maxRegions;
    if (excess > 0) {
      // Evict a batch below the limit, so the next activations need no commit of their own.
      const batch = Math.min(others.length, excess + (this.options.maxRegions >> 4));
      others.sort((a, b) => a.lastUse - b.lastUse);
      for (let i = 0; i < batch; i++) leaving.push(others[i]);
    }
    return leaving;
  }

  private async writeSlot(regions: Region[]): Promise<void> {
    this.assertOpen();
    if (this.fd === null) this.fd = await createLogFile(this.file);
    this.assertOpen();
    const sequence = this.sequence + 1;
    const image = encodeSlot(sequence, this.options.regionTracks, regions);
    // O_DSYNC: durable when the write returns.
    await pwriteAll(this.fd, image, (sequence % 2) * SLOT_BYTES);
    this.sequence = sequence;
    this.transactions++;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the activity log is closed');
  }

  /** For transactions: close or abandon has taken the file over. */
  private assertActive(): void {
    if (this.final) throw new Error('the activity log is closed');
  }

  /**
   * Waits until no transaction runs or is queued, except one in its metadata
   * commit: that commit may be what called close or abandon (waiting for it
   * would wait forever). Once `final` is set, such a transaction stops when
   * its commit returns and writes nothing (the transaction queued behind it
   * does not start), so close's own commit and slot write cover its regions.
   */
  private quiesce(): Promise<void> {
    return this.serial.idle(() => this.persisting);
  }

  /** Clean shutdown: commits the bits (data first), then empties the log, so a restart resyncs nothing more. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    // Transactions started or queued before the close complete (their writers get their activation),
    // except one in its metadata commit (see quiesce).
    await this.quiesce();
    this.final = true;
    if (!this.failure && this.count > 0) {
      await this.persist();
      this.regions.clear();
      this.count = 0;
      await this.writeSlot([]);
    }
    this.closed = true;
    // One taken over in its commit has ended by now (commits run in order) unless it is the caller.
    await this.quiesce();
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  /** For crash tests: stop as `kill -9` would; a slot write already handed to the kernel completes. */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    this.final = true;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    // A slot write in progress completes; nothing queued starts.
    await this.quiesce();
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

function encodeSlot(sequence: number, regionTracks: number, regions: Region[]): Buffer {
  const used = HEADER_BYTES + regions.length * 8;
  const image = Buffer.alloc(Math.ceil(used / 4096) * 4096);
  image.writeUInt32LE(MAGIC, 0);
  image.writeUInt16LE(VERSION, 4);
  image.writeBigUInt64LE(BigInt(sequence), 8);
  image.writeUInt32LE(regionTracks, 16);
  image.writeUInt32LE(regions.length, 20);
  let offset = HEADER_BYTES;
  for (const region of regions) {
    image.writeUInt32LE(region.bitmap, offset);
    image.writeUInt32LE(region.index, offset + 4);
    offset += 8;
  }
  image.writeUInt32LE(checksum(image, regions.length), 24);
  return image;
}

function checksum(image: Buffer, count: number): number {
  return crc32c(image.subarray(HEADER_BYTES, HEADER_BYTES + count * 8), crc32c(image.subarray(0, 24)));
}

function decodeSlot(image: Buffer): ActivityLogContents | null {
  if (image.length < HEADER_BYTES || image.readUInt32LE(0) !== MAGIC || image.readUInt16LE(4) !== VERSION) return null;
  const count = image.readUInt32LE(20);
  const regionTracks = image.readUInt32LE(16);
  if (count > SLOT_CAPACITY || regionTracks === 0 || HEADER_BYTES + count * 8 > image.length) return null;
  if (checksum(image, count) !== image.readUInt32LE(24)) return null;
  const regions: Array<{ bitmap: number; region: number }> = [];
  for (let offset = HEADER_BYTES; offset < HEADER_BYTES + count * 8; offset += 8) {
    regions.push({ bitmap: image.readUInt32LE(offset), region: image.readUInt32LE(offset + 4) });
  }
  return { sequence: Number(image.readBigUInt64LE(8)), regionTracks, regions };
}

/** Creates the log file at its full size (zeroes: no valid slot), so slot writes never change its size. */
async function createLogFile(file: string): Promise<number> {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DSYNC, 0o600);
  await pwriteAll(fd, Buffer.alloc(2 * SLOT_BYTES), 0);
  await syncDirectory(path.dirname(file));
  return fd;
}
