import fsp from 'node:fs/promises';
import {
  agentEventTypes,
  ProblemError,
  VolumeNameSchema,
  VolumeSizeSchema,
  formatSize,
  type VolumeDependent,
  type PoolStats,
  type TrackDetail,
  type TrackMap,
  type TrackMapQuery,
  type VolumeInfo,
} from '@tandem/contract';
import { dataDirPaths, type AgentIdentity, type DataDirPaths } from '../data-dir.ts';
import { TrackBitmaps } from './bitmaps.ts';
import type { BlockDevice, ExportCatalog } from './block-device.ts';
import { Catalog, type VolumeRow } from './catalog.ts';
import type { Engine } from './engine-api.ts';
import { MetadataJournal, type RecoveryReport } from './journal.ts';
import type { StorageMeter } from './meter.ts';
import { volumeSpace, poolSharedExtents } from './space.ts';
import { buildTrackMap, describeTrack } from './track-map.ts';
import { VolumeDevice } from './volume-device.ts';
import { volumeBusy, type VolumeAction, type VolumeGuard } from './volume-dependents.ts';
import { SegmentCodes } from './segment-codes.ts';
import { RecordType, type FlashOp } from './wal.ts';
import type { MetadataState, VolumeMeta } from './metadata.ts';


/**
 * The storage engine: thin volumes and snapshots over one pool. Names and
 * lineage live in the SQLite catalog; VTTs and refcounts in the metadata
 * journal. Ordering keeps the two agreeing across a crash: a volume appears
 * in the metadata before the catalog and leaves the catalog first, and
 * `open` removes whatever one side holds that the other lacks.
 */
const USAGE_EVENT_MS = 2000;

export class StorageEngine implements Engine {
  readonly catalog: Catalog;
  readonly identity: AgentIdentity;
  readonly paths: DataDirPaths;
  readonly recovery: RecoveryReport;
  /** Persistent per-volume track bitmaps (out-of-sync, target-changed). */
  readonly bitmaps: TrackBitmaps;
  /** Per-track checksums with valid flags (failback, online verify). */
  readonly codes: SegmentCodes;
  private readonly journal: MetadataJournal;
  private readonly rows = new Map<string, VolumeRow>();
  private readonly devices = new Map<number, VolumeDevice>();
  /** Names being created right now (between the checks and the catalog insert). */
  private readonly reserved = new Set<string>();
  private nextId: number;
  private readonly usageChanged = new Set<number>();
  private usageTimer: NodeJS.Timeout | null = null;
  /** Per volume id: bitmaps its writes mark (flash copy change recording). */
  private readonly changeRecording = new Map<number, number[]>();
  private readonly guards: VolumeGuard[] = [];

  private constructor(paths: DataDirPaths, identity: AgentIdentity, journal: MetadataJournal, catalog: Catalog) {
    this.paths = paths;
    this.identity = identity;
    this.journal = journal;
    this.catalog = catalog;
    this.recovery = journal.recovery;
    this.bitmaps = new TrackBitmaps(journal);
    this.codes = new SegmentCodes(journal.state.trackSize);
    this.nextId = 1;
  }

  static async open(dataDir: string): Promise<StorageEngine> {
    const paths = dataDirPaths(dataDir);
    const identity = JSON.parse(await fsp.readFile(paths.identity, 'utf8')) as AgentIdentity;
    const journal = await MetadataJournal.open(paths.meta, paths.pool);
    const catalog = new Catalog(paths.catalog);
    const engine = new StorageEngine(paths, identity, journal, catalog);
    await engine.reconcile();
    await engine.codes.load(paths.meta, (id) => journal.state.volumes.has(id));
    // Before anything reads a bitmap: tracks of regions active at a crash count as out-of-sync.
    await engine.bitmaps.openActivityLog(paths.meta);
    return engine;
  }

  /** Reports WAL commits and fdatasync times to `meter` (metrics); null stops reporting. */
  setMeter(meter: StorageMeter | null): void {
    this.journal.setMeter(meter);
  }

  get trackSize(): number {
    return this.journal.state.trackSize;
  }

  /** Makes the catalog and the metadata agree after a crash between their two writes. */
  private async reconcile(): Promise<void> {
    const state = this.journal.state;
    let changed = false;
    for (const row of this.catalog.listVolumeRows()) {
      const meta = state.volumes.get(row.id);
      if (!meta) {
        this.catalog.deleteVolume(row.id);
        this.catalog.recordEvent('volume.recovered', 'warning', row.name, `removed ${row.name}: its creation did not complete`);
        continue;
      }
      if (meta.sizeBytes !== row.sizeBytes) {
        this.catalog.updateVolumeSize(row.id, meta.sizeBytes);
        row.sizeBytes = meta.sizeBytes;
      }
      this.rows.set(row.name, row);
    }
    const known = new Set([...this.rows.values()].map((row) => row.id));
    for (const id of [...state.volumes.keys()]) {
      if (!known.has(id)) {
        this.journal.log({ type: RecordType.DeleteVolume, volume: id });
        changed = true;
      }
    }
    if (changed) await this.journal.commit();
    for (const id of state.volumes.keys()) this.nextId = Math.max(this.nextId, id + 1);
    for (const row of this.rows.values()) this.nextId = Math.max(this.nextId, row.id + 1);
    // Never an id a deleted volume had: copy sets name their volumes by id (a volume made again under a name is another).
    this.nextId = Math.max(this.nextId, this.catalog.nextVolumeId());
  }

  // --- queries ---

  private row(name: string): VolumeRow {
    const row = this.rows.get(name);
    if (!row) throw new ProblemError('not-found', `there is no volume or snapshot named ${name}`);
    return row;
  }

  private info(row: VolumeRow): VolumeInfo {
    const meta = this.journal.state.volume(row.id);
    const space = volumeSpace(this.journal.state, meta);
    const source = row.sourceId === null ? null : this.nameOf(row.sourceId);
    const snapshots = [...this.rows.values()].filter((r) => r.sourceId === row.id).map((r) => r.name);
    return {
      id: row.id,
      name: row.name,
      kind: row.kind,
      source,
      sizeBytes: meta.sizeBytes,
      trackSize: this.trackSize,
      trackCount: meta.trackCount,
      allocatedBytes: space.allocatedTracks * this.trackSize,
      sharedBytes: space.sharedTracks * this.trackSize,
      exclusiveBytes: (space.allocatedTracks - space.sharedTracks) * this.trackSize,
      snapshots,
      readOnly: row.readOnly,
      createdAt: row.createdAt,
    };
  }

  private nameOf(id: number): string | null {
    for (const row of this.rows.values()) if (row.id === id) return row.name;
    return null;
  }

  listVolumes(): VolumeInfo[] {
    return [...this.rows.values()].sort((a, b) => a.id - b.id).map((row) => this.info(row));
  }

  getVolume(name: string): VolumeInfo {
    return this.info(this.row(name));
  }

  /** The internal id of a volume (what bitmaps and WAL records name). Never reused once the volume is deleted. */
  volumeId(name: string): number {
    return this.row(name).id;
  }

  /** The id of the volume or snapshot named so now, or null when none is. */
  volumeIdOrNull(name: string): number | null {
    return this.rows.get(name)?.id ?? null;
  }

  /** What depends on the volume (guards of copy sets, flash copy, shipping, and open NBD connections for a delete). */
  private dependents(row: VolumeRow, action: VolumeAction): VolumeDependent[] {
    const found = this.guards.flatMap((guard) => guard(row.name, action));
    const device = this.devices.get(row.id);
    if (action === 'delete' && device && device.openCount > 0) {
      found.push({
        kind: 'nbd-export',
        connections: device.openCount,
        step: 'disconnect its NBD clients',
        action: `stop the NBD clients using export ${row.name} (qemu, nbd-client, fio…)`,
      });
    }
    return found;
  }

  // --- changes ---

  private claimName(name: string): void {
    const parsed = VolumeNameSchema.safeParse(name);
    if (!parsed.success) throw new ProblemError('invalid-name', `${JSON.stringify(name)}: ${parsed.error.issues[0].message}`);
    if (this.rows.has(name) || this.reserved.has(name)) {
      throw new ProblemError('already-exists', `a volume or snapshot named ${name} already exists`);
    }
    this.reserved.add(name);
  }

  private checkSize(sizeBytes: number): void {
    const parsed = VolumeSizeSchema.safeParse(sizeBytes);
    if (!parsed.success) throw new ProblemError('invalid-size', `${sizeBytes}: ${parsed.error.issues[0].message}`);
  }

  async createVolume(name: string, sizeBytes: number): Promise<VolumeInfo> {
    this.checkSize(sizeBytes);
    this.claimName(name);
    try {
      const id = this.nextId++;
      this.journal.log({ type: RecordType.CreateVolume, volume: id, sizeBytes });
      await this.journal.commit();
      const row: VolumeRow = {
        id,
        name,
        kind: 'volume',
        sourceId: null,
        sizeBytes,
        readOnly: false,
        createdAt: new Date().toISOString(),
      };
      this.catalog.insertVolume(row);
      this.rows.set(name, row);
      this.catalog.recordEvent('volume.created', 'info', name, `created volume ${name} (${formatSize(sizeBytes)})`, {
        sizeBytes,
      });
      return this.info(row);
    } finally {
      this.reserved.delete(name);
    }
  }

  async resizeVolume(name: string, sizeBytes: number): Promise<VolumeInfo> {
    const row = this.row(name);
    this.checkSize(sizeBytes);
    const dependents = this.dependents(row, 'resize');
    if (dependents.length > 0) throw volumeBusy(name, 'resize', dependents);
    const meta = this.journal.state.volume(row.id);
    if (sizeBytes < meta.sizeBytes) {
      throw new ProblemError(
        'invalid-size',
        `${name} is ${formatSize(meta.sizeBytes)}; volumes only grow (asked for ${formatSize(sizeBytes)})`,
      );
    }
    if (sizeBytes === meta.sizeBytes) return this.info(row);
    const previous = meta.sizeBytes;
    this.journal.log({ type: RecordType.ResizeVolume, volume: row.id, sizeBytes });
    await this.journal.commit();
    this.catalog.updateVolumeSize(row.id, sizeBytes);
    row.sizeBytes = sizeBytes;
    this.catalog.recordEvent(
      'volume.resized',
      'info',
      name,
      `grew ${name} from ${formatSize(previous)} to ${formatSize(sizeBytes)}`,
      { previousBytes: previous, sizeBytes },
    );
    return this.info(row);
  }

  async deleteVolume(name: string): Promise<void> {
    const row = this.row(name);
    const dependents = this.dependents(row, 'delete');
    if (dependents.length > 0) throw volumeBusy(name, 'delete', dependents);
    const device = this.devices.get(row.id);
    const release = device ? await device.lock.acquireAll() : () => {};
    try {
      if (!this.rows.has(name)) throw new ProblemError('not-found', `there is no volume or snapshot named ${name}`);
      this.catalog.deleteVolume(row.id);
      this.rows.delete(name);
      for (const other of this.rows.values()) if (other.sourceId === row.id) other.sourceId = null;
      device?.markDeleted();
      this.devices.delete(row.id);
      this.codes.dropVolume(row.id);
      this.journal.log({ type: RecordType.DeleteVolume, volume: row.id });
    } finally {
      release();
    }
    await this.journal.commit();
    this.catalog.recordEvent(
      row.kind === 'snapshot' ? 'snapshot.deleted' : 'volume.deleted',
      'info',
      name,
      `deleted ${row.kind} ${name}`,
    );
  }

  async createSnapshot(source: string, name: string, options: { readOnly?: boolean } = {}): Promise<VolumeInfo> {
    const sourceRow = this.row(source);
    this.claimName(name);
    try {
      const device = this.deviceFor(sourceRow);
      const started = performance.now();
      // Hold the source's writes only while the VTT pointers are copied.
      const release = await device.lock.acquireAll();
      const id = this.nextId++;
      try {
        this.journal.log({ type: RecordType.Snapshot, source: sourceRow.id, target: id });
        this.codes.cloneVolume(sourceRow.id, id);
      } finally {
        release();
      }
      await this.journal.commit();
      const row: VolumeRow = {
        id,
        name,
        kind: 'snapshot',
        sourceId: sourceRow.id,
        sizeBytes: sourceRow.sizeBytes,
        readOnly: options.readOnly ?? false,
        createdAt: new Date().toISOString(),
      };
      this.catalog.insertVolume(row);
      this.rows.set(name, row);
      const elapsedMs = Math.round((performance.now() - started) * 1000) / 1000;
      this.catalog.recordEvent('snapshot.created', 'info', name, `snapshot ${name} of ${source} created`, {
        source,
        elapsedMs,
      });
      return this.info(row);
    } finally {
      this.reserved.delete(name);
    }
  }

  // --- data path ---

  private deviceFor(row: VolumeRow): VolumeDevice {
    let device = this.devices.get(row.id);
    if (!device) {
      const id = row.id;
      device = new VolumeDevice(
        this.journal,
        this.codes,
        this.journal.state.volume(id),
        row.name,
        row.readOnly,
        (volumeId) => this.noteUsageChange(volumeId),
        () => this.changeRecording.get(id) ?? [],
      );
      this.devices.set(row.id, device);
    }
    return device;
  }

  device(name: string): BlockDevice {
    return this.deviceFor(this.row(name));
  }

  // --- flash copy support ---

  /** Adds a check run before every volume delete and resize: what depends on the volume (see volume-dependents.ts). */
  addVolumeGuard(guard: VolumeGuard): void {
    this.guards.push(guard);
  }

  /** The in-memory metadata (VTTs, refcounts, bitmaps): read only, for derived figures. */
  get metadata(): MetadataState {
    return this.journal.state;
  }

  /**
   * The metadata journal itself (state, WAL records, group commit, extent
   * allocator and store, read epochs), for the CDP journal (agents/src/cdp),
   * which keeps its do and undo streams in the same metadata and WAL.
   */
  get metadataJournal(): MetadataJournal {
    return this.journal;
  }

  volumeMeta(name: string): VolumeMeta {
    return this.journal.state.volume(this.row(name).id);
  }

  /**
   * Holds the host writes of the named volumes: waits for writes in flight
   * to finish and queues new ones, locking in a fixed order (by volume id)
   * so two holds never deadlock. Gives up after `timeoutMs` with problem
   * `timeout`, releasing whatever it held. Returns the release.
   */
  async holdWrites(names: string[], timeoutMs: number): Promise<() => void> {
    const rows = [...new Set(names)].map((name) => this.row(name)).sort((a, b) => a.id - b.id);
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new ProblemError('timeout', `host writes of ${names.join(', ')} could not be held within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const releases: Array<() => void> = [];
    const releaseAll = () => {
      for (const release of releases.splice(0).reverse()) release();
    };
    try {
      for (const row of rows) releases.push(await this.deviceFor(row).lock.acquireAll(controller.signal));
    } catch (error) {
      releaseAll();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return releaseAll;
  }

  /**
   * Logs one atomic flash record (clones of track ranges, bitmap creation
   * and clearing) and clones the segment codes of cloned ranges. The caller
   * holds the writes of every volume involved; the change is durable after
   * the next commit (`flush`).
   */
  logFlash(ops: FlashOp[]): void {
    if (ops.length === 0) return;
    this.journal.log({ type: RecordType.Flash, ops });
    for (const op of ops) {
      if (op.op !== 'clone') continue;
      const target = this.journal.state.volume(op.target);
      this.codes.cloneRange(op.source, op.target, op.track, Math.min(op.track + op.count, target.trackCount));
      this.noteUsageChange(op.target);
    }
  }

  /** A bitmap id for a `create-bitmap` op of a flash record. */
  reserveBitmapId(): number {
    return this.bitmaps.reserveId();
  }

  /** Deletes bitmaps (durable with the next commit). */
  dropBitmaps(ids: number[]): void {
    for (const id of ids) {
      if (this.journal.state.bitmaps.has(id)) this.journal.log({ type: RecordType.DeleteBitmap, bitmap: id });
    }
  }

  /** Which bitmaps a volume's writes mark from now on (none: stop recording). */
  setChangeRecording(name: string, bitmaps: number[]): void {
    const id = this.row(name).id;
    if (bitmaps.length === 0) this.changeRecording.delete(id);
    else this.changeRecording.set(id, [...bitmaps]);
  }

  /** Background copy: gives `target` its own copy of tracks [first, end) it still shares with `source`. */
  unshareTracks(target: string, source: string, first: number, end: number): Promise<number> {
    const targetRow = this.row(target);
    return this.deviceFor(targetRow).unshareTracks(first, end, this.volumeMeta(source));
  }

  /** Segment codes of a track range, computing invalid ones (see VolumeDevice.segmentCodes). */
  segmentCodes(name: string, start: number, count: number): Promise<{ codes: BigUint64Array; computed: number }> {
    return this.deviceFor(this.row(name)).segmentCodes(start, count);
  }

  /**
   * Host writes that allocate or release tracks change a volume's space;
   * consoles hear of it through a `volume.usage` event, at most one per
   * volume every USAGE_EVENT_MS (not one per write).
   */
  private noteUsageChange(volumeId: number): void {
    this.usageChanged.add(volumeId);
    if (this.usageTimer) return;
    this.usageTimer = setTimeout(() => {
      this.usageTimer = null;
      const changed = [...this.usageChanged];
      this.usageChanged.clear();
      for (const id of changed) {
        const row = [...this.rows.values()].find((r) => r.id === id);
        if (!row) continue;
        const info = this.info(row);
        this.catalog.recordEvent(
          agentEventTypes.volumeUsage,
          'info',
          row.name,
          `${row.name}: ${formatSize(info.allocatedBytes)} allocated, ${formatSize(info.sharedBytes)} shared`,
          { allocatedBytes: info.allocatedBytes, sharedBytes: info.sharedBytes, exclusiveBytes: info.exclusiveBytes },
        );
      }
    }, USAGE_EVENT_MS);
    this.usageTimer.unref();
  }

  /** Commits every change and every completed write (what NBD FLUSH means, for all volumes). */
  flush(): Promise<void> {
    return this.journal.commit();
  }

  readonly exports: ExportCatalog = {
    listExports: () =>
      [...this.rows.values()].map((row) => ({
        name: row.name,
        description:
          row.kind === 'snapshot'
            ? `snapshot of ${this.nameOf(row.sourceId ?? -1) ?? 'a deleted volume'}, ${formatSize(row.sizeBytes)}`
            : `volume, ${formatSize(row.sizeBytes)}`,
      })),
    openExport: (name: string) => this.device(name),
  };

  // --- pool and maps ---

  async poolStats(): Promise<PoolStats> {
    const state = this.journal.state;
    const allocator = this.journal.allocator;
    const statfs = await fsp.statfs(this.paths.pool);
    let provisioned = 0;
    let snapshots = 0;
    for (const row of this.rows.values()) {
      provisioned += state.volume(row.id).sizeBytes;
      if (row.kind === 'snapshot') snapshots++;
    }
    return {
      trackSize: this.trackSize,
      extentCount: allocator.capacityExtents,
      usedExtents: state.usedExtents,
      freeExtents: allocator.capacityExtents - state.usedExtents,
      sharedExtents: poolSharedExtents(state),
      usedBytes: state.usedExtents * this.trackSize,
      provisionedBytes: provisioned,
      fileBytes: await this.journal.extents.apparentBytes(),
      filesystemFreeBytes: Number(statfs.bavail) * Number(statfs.bsize),
      volumes: this.rows.size - snapshots,
      snapshots,
    };
  }

  trackMap(name: string, query: TrackMapQuery): TrackMap {
    const row = this.row(name);
    return buildTrackMap(this.journal.state, this.journal.state.volume(row.id), name, query);
  }

  trackDetail(name: string, track: number): TrackDetail {
    const row = this.row(name);
    const state = this.journal.state;
    const others = [...this.rows.values()]
      .filter((r) => r.id !== row.id)
      .map((r) => ({ name: r.name, volume: state.volume(r.id) }));
    return describeTrack(state, state.volume(row.id), name, track, others);
  }

  async close(): Promise<void> {
    if (this.usageTimer) clearTimeout(this.usageTimer);
    await this.bitmaps.closeActivityLog();
    await this.journal.close();
    await this.codes.save(this.paths.meta);
    this.catalog.close();
  }

  /** For crash tests: drop everything as `kill -9` would (see MetadataJournal.abandon). */
  async abandonForCrashTest(keepWalBytes = 0): Promise<void> {
    if (this.usageTimer) clearTimeout(this.usageTimer);
    this.usageTimer = null;
    await this.bitmaps.abandonActivityLog();
    await this.journal.abandon(keepWalBytes);
    this.catalog.close();
  }

  /** Bytes of metadata records not yet committed (for tests and diagnostics). */
  get pendingMetadataBytes(): number {
    return this.journal.pendingRecordBytes;
  }
}
