import {
  EstablishFlashRequestSchema,
  flashEventTypes,
  FlashRefreshRequestSchema,
  FlashReverseRequestSchema,
  FlashUpdateRequestSchema,
  FlashWithdrawRequestSchema,
  ProblemError,
  type EstablishFlashRequest,
  type FlashPairInfo,
  type FlashState,
  type FlashMirrorHandling,
  type FlashRefreshRequest,
  type FlashReverseRequest,
  type FlashSessionInfo,
  type FlashTrackMap,
  type FlashUpdateRequest,
  type FlashWithdrawRequest,
  type VolumeDependent,
  type TrackMapQuery,
} from '@tandem/contract';
import type { Logger } from 'pino';
import type { StorageEngine } from '../storage/engine.ts';
import type { FlashOp } from '../storage/wal.ts';
import type { TapSource, WriteTap } from '../write-path/splitter.ts';
import { withTimeout } from '../timeout.ts';
import { BackgroundCopy } from './background-copy.ts';
import { FlashStore, type FlashPairRecord, type FlashSessionRecord } from './store.ts';
import { changedRuns, copiedTrackMap, percentOf, setCount, sharedTracks } from './tracks.ts';
import type { FlashMirrorChange, FlashMirrorHooks, FlashMirrorPairChange, TrackRange } from './hooks.ts';
import { noMirrorHooks } from './hooks.ts';
import { validatePairs, volumeDependents } from './rules.ts';
import { FlashWriteInhibitTap } from './write-inhibit-tap.ts';

export { noMirrorHooks } from './hooks.ts';
export type { FlashMirrorChange, FlashMirrorHooks, FlashMirrorPairChange, TrackRange } from './hooks.ts';

export interface FlashServiceOptions {
  engine: StorageEngine;
  logger: Logger;
  hooks?: FlashMirrorHooks;
}

type ChangeKind = FlashMirrorChange['kind'];

/** States in which the relationships exist and a new point in time may be taken. */
const READY_STATES: ReadonlySet<FlashState> = new Set(['copying', 'idle-copied', 'suspended']);

/**
 * Flash copy sessions of one agent: point-in-time relationships source ->
 * target inside the agent's pool (PROTOCOL.md "Flash copy").
 *
 * The engine does the copy-on-write: establishing makes the target's VTT
 * share the source's chunks and extents in one atomic WAL record (flat in
 * volume size), and a later write to a shared track on either side is
 * redirected, so the old data stays with the target. "Copied" tracks are
 * derived from the VTTs (a target track is not yet copied while it still
 * points at the source's extent); the background copy gives the target its
 * own extents. Incremental sessions record changes on both sides in engine
 * bitmaps marked under the range lock of every write, whichever path it
 * takes (NBD splitter, mirror apply, tests).
 *
 * Admin operations run one at a time (a queue); the background copies run
 * beside them.
 */
export class FlashService implements TapSource {
  private readonly engine: StorageEngine;
  private readonly logger: Logger;
  private hooks: FlashMirrorHooks;
  private readonly store: FlashStore;
  private readonly sessions = new Map<string, FlashSessionRecord>();
  private readonly copiers = new Map<string, BackgroundCopy>();
  private readonly tapCache = new Map<string, WriteTap[]>();
  private readonly sharedCache = new Map<string, { version: number; shared: number }>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Volumes whose writes mark change-recording bitmaps now. */
  private armed = new Set<string>();

  constructor(options: FlashServiceOptions) {
    this.engine = options.engine;
    this.logger = options.logger;
    this.hooks = options.hooks ?? noMirrorHooks;
    this.store = new FlashStore(options.engine.catalog.db);
    this.engine.addVolumeGuard((name) => this.guard(name));
  }

  /** Installs the mirror interplay (replaces the no-op default). */
  setMirrorHooks(hooks: FlashMirrorHooks): void {
    this.hooks = hooks;
  }

  /**
   * Loads the persisted sessions and resumes them: an establish cut short
   * by a crash is completed or forgotten (by whether its atomic flash
   * record reached the journal), change recording is re-armed, background
   * copies continue.
   */
  start(): void {
    for (const record of this.store.load()) {
      this.sessions.set(record.name, record);
      if (record.withdrawnAt) continue;
      const established = record.pairs.every((pair) => this.bitmapOf(pair.targetBitmap, pair.target) !== undefined);
      if (record.state === 'preparing' || record.state === 'prepared') {
        if (established) {
          record.pointInTime ??= record.updatedAt;
          this.transition(record, this.activeState(record), 'the establish reached the journal before a restart');
        } else {
          this.sessions.delete(record.name);
          this.store.delete(record.name);
          this.engine.catalog.recordEvent(flashEventTypes.state, 'warning', record.name, `flash session ${record.name}: an establish interrupted by a restart changed nothing`, {
            session: record.name,
            from: record.state,
            to: null,
          });
        }
        continue;
      }
      if (!established) {
        // The withdraw's bitmap deletion is durable but its catalog update was lost.
        this.markWithdrawn(record);
      }
    }
    this.updateRecording();
    for (const record of this.sessions.values()) this.resumeCopy(record);
  }

  /** Stops background copies (they resume at the next start). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.copiers.values()].map((copier) => copier.stop()));
    this.copiers.clear();
    await this.queue.catch(() => {});
  }

  // --- queries ---

  list(): FlashSessionInfo[] {
    return [...this.sessions.values()].map((record) => this.info(record));
  }

  get(name: string): FlashSessionInfo {
    return this.info(this.record(name));
  }

  trackMap(session: string, pairId: string, query: TrackMapQuery): FlashTrackMap {
    const record = this.record(session);
    const pair = record.pairs.find((p) => p.id === pairId);
    if (!pair) throw new ProblemError('not-found', `flash session ${session} has no pair ${pairId}`);
    const map = copiedTrackMap(this.engine.volumeMeta(pair.source), this.engine.volumeMeta(pair.target), query);
    return { session, pair: pair.id, target: pair.target, trackSize: this.engine.trackSize, ...map };
  }

  // --- changes ---

  async establish(input: EstablishFlashRequest): Promise<FlashSessionInfo> {
    const request = EstablishFlashRequestSchema.parse(input);
    return this.exclusive(async () => {
      const name = request.name ?? this.generateName();
      if (this.sessions.has(name)) throw new ProblemError('already-exists', `a flash session named ${name} already exists`);
      this.validatePairs(request);
      const now = new Date().toISOString();
      const record: FlashSessionRecord = {
        name,
        state: 'preparing',
        options: {
          backgroundCopy: request.backgroundCopy,
          rateMiBps: request.rateMiBps,
          incremental: request.incremental,
          writeInhibitTarget: request.writeInhibitTarget,
          preserveMirror: request.preserveMirror,
        },
        coordinated: request.coordinated,
        pointInTime: null,
        holdMs: null,
        reason: null,
        withdrawnAt: null,
        createdAt: now,
        updatedAt: now,
        pairs: request.pairs.map((pair, index) => ({
          id: `p${index + 1}`,
          position: index,
          source: pair.source,
          target: pair.target,
          sourceBitmap: this.engine.reserveBitmapId(),
          targetBitmap: this.engine.reserveBitmapId(),
          state: 'preparing',
          mirror: 'none',
          remoteTarget: pair.remoteTarget ?? null,
          reason: null,
        })),
      };
      // The row comes first: a crash before the flash record is durable leaves a
      // 'preparing' row that start() drops (its bitmaps never appeared).
      this.inCatalogTransaction(() => {
        this.store.insert(record);
        this.stateEvent(record, null, 'preparing');
      });
      this.sessions.set(name, record);
      this.invalidateTaps();
      await this.pointInTime(record, 'establish', request.holdTimeoutMs);
      return this.info(record);
    });
  }

  async refresh(name: string, input: FlashRefreshRequest): Promise<FlashSessionInfo> {
    const request = FlashRefreshRequestSchema.parse(input ?? {});
    return this.exclusive(async () => {
      const record = this.ready(name, 'refresh');
      await this.pointInTime(record, 'refresh', request.holdTimeoutMs);
      return this.info(record);
    });
  }

  async reverse(name: string, input: FlashReverseRequest): Promise<FlashSessionInfo> {
    const request = FlashReverseRequestSchema.parse(input ?? {});
    return this.exclusive(async () => {
      const record = this.ready(name, 'reverse');
      await this.pointInTime(record, 'reverse', request.holdTimeoutMs);
      return this.info(record);
    });
  }

  async withdraw(name: string, input: FlashWithdrawRequest): Promise<FlashSessionInfo> {
    const request = FlashWithdrawRequestSchema.parse(input ?? {});
    return this.exclusive(async () => {
      const record = this.record(name);
      if (record.withdrawnAt) return this.info(record);
      if (record.state === 'preparing' || record.state === 'prepared') {
        throw new ProblemError('invalid-state', `flash session ${name} is being established`);
      }
      if (request.finishCopy && this.uncopiedTracks(record) > 0) {
        this.transition(record, 'stopping');
        this.resumeCopy(record);
        return this.info(record);
      }
      await this.finishWithdraw(record);
      return this.info(record);
    });
  }

  async update(name: string, input: FlashUpdateRequest): Promise<FlashSessionInfo> {
    const request = FlashUpdateRequestSchema.parse(input);
    return this.exclusive(async () => {
      const record = this.record(name);
      if (record.withdrawnAt) throw new ProblemError('invalid-state', `flash session ${name} was withdrawn`);
      if (!READY_STATES.has(record.state) && record.state !== 'stopping') {
        throw new ProblemError('invalid-state', `flash session ${name} is ${record.state}`);
      }
      if (record.state === 'stopping' && request.paused !== undefined) {
        throw new ProblemError('invalid-state', `flash session ${name} is finishing its copy before the withdraw; it cannot be paused`);
      }
      if (request.rateMiBps !== undefined) record.options.rateMiBps = request.rateMiBps;
      if (request.backgroundCopy !== undefined) record.options.backgroundCopy = request.backgroundCopy;
      record.updatedAt = new Date().toISOString();
      this.store.save(record);
      if (request.paused === true && record.state !== 'suspended') {
        await this.stopCopy(record);
        this.transition(record, 'suspended', 'paused by the administrator');
      } else if (request.paused === false && record.state === 'suspended') {
        this.transition(record, this.activeState(record));
      } else if (record.state === 'copying' || record.state === 'idle-copied') {
        this.transition(record, this.activeState(record));
      }
      if (!record.options.backgroundCopy && record.state !== 'stopping') await this.stopCopy(record);
      this.resumeCopy(record);
      return this.info(record);
    });
  }

  /** Removes a session: withdraws its relationships first when they exist (without finishing the copy). */
  async remove(name: string): Promise<void> {
    await this.exclusive(async () => {
      const record = this.record(name);
      if (record.state === 'preparing' || record.state === 'prepared') {
        throw new ProblemError('invalid-state', `flash session ${name} is being established`);
      }
      if (!record.withdrawnAt) await this.finishWithdraw(record);
      this.sessions.delete(name);
      this.store.delete(name);
      this.engine.catalog.recordEvent(flashEventTypes.state, 'info', name, `flash session ${name} removed`, {
        session: name,
        from: record.state,
        to: null,
      });
    });
  }

  /**
   * Records how the mirror handled a pair once that is known after the
   * change (an async secondary answers through the mirror stream, after the
   * writes were released). Unknown sessions or pairs are ignored.
   */
  noteMirrorHandling(session: string, pairId: string, mirror: FlashMirrorHandling, reason: string | null = null): void {
    const record = this.sessions.get(session);
    const pair = record?.pairs.find((p) => p.id === pairId);
    if (!record || !pair) return;
    pair.mirror = mirror;
    pair.reason = reason;
    record.updatedAt = new Date().toISOString();
    this.store.save(record);
  }

  // --- write taps ---

  /** Write taps of a volume: a write-inhibited target refuses host writes (order 10). */
  tapsFor(volume: string): WriteTap[] {
    let taps = this.tapCache.get(volume);
    if (!taps) {
      taps = [];
      for (const record of this.sessions.values()) {
        if (record.withdrawnAt || !record.options.writeInhibitTarget) continue;
        if (record.pairs.some((pair) => pair.target === volume)) taps.push(new FlashWriteInhibitTap(volume, record.name));
      }
      this.tapCache.set(volume, taps);
    }
    return taps;
  }

  private invalidateTaps(): void {
    this.tapCache.clear();
  }

  // --- the point-in-time change (establish, refresh, reverse) ---

  /**
   * Holds the host writes of every source and target (queued, in a fixed
   * order), asks the mirror hooks, then logs ONE flash record with every
   * pair's clones and bitmap changes, releases the writes and commits. On a
   * hold timeout or a hook's refusal nothing changes.
   */
  private async pointInTime(record: FlashSessionRecord, kind: ChangeKind, holdTimeoutMs: number): Promise<void> {
    const previous = record.state;
    const previousReason = record.reason;
    const volumes = record.pairs.flatMap((pair) => [pair.source, pair.target]);
    const deadline = Date.now() + holdTimeoutMs;
    if (kind !== 'establish') {
      await this.stopCopy(record);
      this.transition(record, 'preparing');
    }
    const undo = (error: unknown) => {
      const problem = error instanceof ProblemError ? error : null;
      if (problem?.problem === 'timeout') {
        this.engine.catalog.recordEvent(
          flashEventTypes.holdTimeout,
          'warning',
          record.name,
          `flash session ${record.name}: ${kind} gave up, host writes could not be held within ${holdTimeoutMs} ms; nothing was changed`,
          { session: record.name, kind, holdTimeoutMs },
        );
      }
      if (kind === 'establish') {
        this.sessions.delete(record.name);
        this.store.delete(record.name);
        this.invalidateTaps();
        this.stateEvent(record, record.state, null, problem?.message ?? String(error));
      } else {
        this.transition(record, previous, previousReason);
        this.resumeCopy(record);
      }
    };
    let release: () => void;
    try {
      release = await this.engine.holdWrites(volumes, holdTimeoutMs);
    } catch (error) {
      undo(error);
      throw error;
    }
    const heldAt = performance.now();
    let change: FlashMirrorChange;
    // Nothing is written to the catalog while the writes are held: 'prepared'
    // is kept in memory and its events are recorded after the release.
    const beforePrepared = { session: record.state, pairs: record.pairs.map((pair) => pair.state) };
    try {
      record.state = 'prepared';
      for (const pair of record.pairs) pair.state = 'prepared';
      change = {
        kind,
        session: record.name,
        options: { ...record.options },
        coordinated: record.coordinated,
        pairs: record.pairs.map((pair) => this.pairChange(record, pair, kind)),
        deadline,
      };
      const handling = await withTimeout(
        this.hooks.beforeTargetChange(change),
        deadline - Date.now(),
        () => new ProblemError('timeout', `flash session ${record.name}: the mirror did not get ready for the ${kind} before the hold timeout`),
      );
      const ops: FlashOp[] = [];
      for (const [index, pair] of record.pairs.entries()) {
        const part = change.pairs[index];
        const from = this.engine.volumeId(part.from);
        const to = this.engine.volumeId(part.changed);
        const tracks = part.tracks === 'all' ? [{ start: 0, count: this.engine.volumeMeta(part.changed).trackCount }] : part.tracks;
        for (const range of tracks) ops.push({ op: 'clone', source: from, target: to, track: range.start, count: range.count });
        if (kind === 'establish') {
          ops.push({ op: 'create-bitmap', bitmap: pair.sourceBitmap!, volume: this.engine.volumeId(pair.source) });
          ops.push({ op: 'create-bitmap', bitmap: pair.targetBitmap!, volume: this.engine.volumeId(pair.target) });
        } else {
          for (const bitmap of [pair.sourceBitmap, pair.targetBitmap]) {
            if (bitmap !== null && this.engine.metadata.bitmaps.has(bitmap)) ops.push({ op: 'clear-bitmap', bitmap });
          }
        }
        pair.mirror = handling[index] ?? 'none';
      }
      // The instant of the point in time: one record, applied at once, while every write is held.
      this.engine.logFlash(ops);
      record.pointInTime = new Date().toISOString();
      if (kind === 'establish') this.updateRecording();
    } catch (error) {
      release();
      undo(error);
      throw error;
    }
    release();
    record.holdMs = Math.round((performance.now() - heldAt) * 1000) / 1000;
    await this.engine.flush();
    const tracks = change.pairs.reduce((sum, pair) => sum + (pair.tracks === 'all' ? this.engine.volumeMeta(pair.changed).trackCount : pair.tracks.reduce((n, r) => n + r.count, 0)), 0);
    const type = kind === 'establish' ? flashEventTypes.established : kind === 'refresh' ? flashEventTypes.refreshed : flashEventTypes.reversed;
    const verb = kind === 'establish' ? 'established' : kind === 'refresh' ? 'refreshed' : 'reversed (targets restored onto sources)';
    this.inCatalogTransaction(() => {
      this.stateEvent(record, beforePrepared.session, 'prepared');
      for (const [index, pair] of record.pairs.entries()) {
        if (beforePrepared.pairs[index] !== 'prepared') this.stateEvent(record, beforePrepared.pairs[index], 'prepared', null, pair);
      }
      // A paused session stays paused across a new point in time.
      if (previous === 'suspended') this.transition(record, 'suspended', previousReason);
      else this.transition(record, this.activeState(record));
      this.engine.catalog.recordEvent(type, 'info', record.name, `flash session ${record.name} ${verb}: ${record.pairs.length} pair(s), writes held ${record.holdMs} ms`, {
        session: record.name,
        pairs: record.pairs.map((pair) => ({ id: pair.id, source: pair.source, target: pair.target, mirror: pair.mirror })),
        holdMs: record.holdMs,
        tracks,
        pointInTime: record.pointInTime,
      });
    });
    try {
      await this.hooks.afterTargetChange?.(change);
    } catch (error) {
      this.logger.warn({ err: error, session: record.name }, 'flash mirror hook afterTargetChange failed');
    }
    this.resumeCopy(record);
  }

  private pairChange(record: FlashSessionRecord, pair: FlashPairRecord, kind: ChangeKind): FlashMirrorPairChange {
    const reverse = kind === 'reverse';
    let tracks: TrackRange[] | 'all' = 'all';
    if (kind !== 'establish' && record.options.incremental) {
      const state = this.engine.metadata;
      const bitmaps = [pair.sourceBitmap, pair.targetBitmap].map((id) => (id === null ? undefined : state.bitmaps.get(id)));
      if (bitmaps.every((bitmap) => bitmap !== undefined)) {
        tracks = changedRuns(bitmaps, this.engine.volumeMeta(pair.target).trackCount);
      }
    }
    return {
      id: pair.id,
      source: pair.source,
      target: pair.target,
      remoteTarget: pair.remoteTarget,
      changed: reverse ? pair.source : pair.target,
      from: reverse ? pair.target : pair.source,
      tracks,
    };
  }

  // --- withdraw ---

  private async finishWithdraw(record: FlashSessionRecord): Promise<void> {
    await this.stopCopy(record);
    const bitmaps = record.pairs.flatMap((pair) => [pair.sourceBitmap, pair.targetBitmap]).filter((id): id is number => id !== null);
    // Durable first: a crash before the catalog update finds the bitmaps gone and completes the withdraw.
    this.engine.dropBitmaps(bitmaps);
    this.markWithdrawn(record);
    this.updateRecording();
    await this.engine.flush();
    this.engine.catalog.recordEvent(
      flashEventTypes.withdrawn,
      'info',
      record.name,
      `flash session ${record.name} withdrawn (${record.state === 'idle-copied' ? 'targets fully copied' : 'before the copy finished; the targets still hold their point-in-time images'})`,
      { session: record.name, state: record.state, pairs: record.pairs.map((pair) => ({ id: pair.id, source: pair.source, target: pair.target })) },
    );
    try {
      await this.hooks.withdrawn?.(record.name, record.pairs.map((pair) => ({ id: pair.id, source: pair.source, target: pair.target })));
    } catch (error) {
      this.logger.warn({ err: error, session: record.name }, 'flash mirror hook withdrawn failed');
    }
  }

  private markWithdrawn(record: FlashSessionRecord): void {
    const complete = this.volumesExist(record) && this.uncopiedTracks(record) === 0;
    record.withdrawnAt = new Date().toISOString();
    this.invalidateTaps();
    this.transition(record, complete ? 'idle-copied' : 'stopped');
  }

  // --- background copy ---

  private resumeCopy(record: FlashSessionRecord): void {
    if (this.closed || record.withdrawnAt || this.copiers.has(record.name)) return;
    const wanted = record.state === 'stopping' || (record.state === 'copying' && record.options.backgroundCopy);
    if (!wanted) return;
    const copier = new BackgroundCopy({
      engine: this.engine,
      pairs: record.pairs,
      rateMiBps: () => record.options.rateMiBps,
      onPairDone: (pair) => {
        if (record.state === 'copying' && pair.state !== 'idle-copied') {
          const from = pair.state;
          pair.state = 'idle-copied';
          this.store.save(record);
          this.stateEvent(record, from, 'idle-copied', null, pair);
        }
      },
      onProgress: () => this.progressEvent(record),
      onDone: () => {
        this.copiers.delete(record.name);
        void this.exclusive(async () => {
          if (record.withdrawnAt) return;
          if (record.state === 'stopping') await this.finishWithdraw(record);
          else if (record.state === 'copying') this.transition(record, this.activeState(record));
        }).catch((error: unknown) => this.logger.error({ err: error, session: record.name }, 'flash copy completion failed'));
      },
      onError: (error) => {
        this.copiers.delete(record.name);
        this.logger.error({ err: error, session: record.name }, 'flash background copy failed');
        if (!this.closed && !record.withdrawnAt && record.state !== 'suspended') {
          this.transition(record, 'suspended', `background copy failed: ${error.message}`);
        }
      },
    });
    this.copiers.set(record.name, copier);
  }

  private async stopCopy(record: FlashSessionRecord): Promise<void> {
    const copier = this.copiers.get(record.name);
    if (!copier) return;
    this.copiers.delete(record.name);
    await copier.stop();
  }

  private progressEvent(record: FlashSessionRecord): void {
    const info = this.info(record);
    const copied = info.pairs.reduce((sum, pair) => sum + pair.copiedTracks, 0);
    const total = info.pairs.reduce((sum, pair) => sum + pair.totalTracks, 0);
    this.engine.catalog.recordEvent(flashEventTypes.copyProgress, 'info', record.name, `flash session ${record.name}: ${percentOf(copied, total).toFixed(1)} % copied`, {
      session: record.name,
      copiedTracks: copied,
      totalTracks: total,
      percent: percentOf(copied, total),
      bytesPerSecond: info.copyBytesPerSecond,
      etaSeconds: info.etaSeconds,
    });
  }

  // --- change recording ---

  /** Arms the engine's change recording: every volume of an active incremental session marks its bitmap. */
  private updateRecording(): void {
    const byVolume = new Map<string, number[]>();
    const add = (volume: string, bitmap: number | null) => {
      if (bitmap === null) return;
      const list = byVolume.get(volume) ?? [];
      list.push(bitmap);
      byVolume.set(volume, list);
    };
    for (const record of this.sessions.values()) {
      if (record.withdrawnAt || !record.options.incremental) continue;
      for (const pair of record.pairs) {
        add(pair.source, pair.sourceBitmap);
        add(pair.target, pair.targetBitmap);
      }
    }
    for (const volume of new Set([...this.armed, ...byVolume.keys()])) {
      if (this.volumeExists(volume)) this.engine.setChangeRecording(volume, byVolume.get(volume) ?? []);
    }
    this.armed = new Set(byVolume.keys());
  }

  // --- state ---

  /** The state of live relationships: copying while anything is left to copy (or no-copy), else idle-copied. */
  private activeState(record: FlashSessionRecord): FlashState {
    if (!record.options.backgroundCopy) return 'copying';
    return this.uncopiedTracks(record) === 0 ? 'idle-copied' : 'copying';
  }

  /** One SQLite transaction (one fsync) for several catalog writes. */
  private inCatalogTransaction(work: () => void): void {
    const db = this.engine.catalog.db;
    if (db.inTransaction) work();
    else db.transaction(work)();
  }

  /** Moves a session (and its pairs) to a state: persisted, with an event per change. */
  private transition(record: FlashSessionRecord, to: FlashState, reason: string | null = null): void {
    this.inCatalogTransaction(() => this.transitionNow(record, to, reason));
  }

  private transitionNow(record: FlashSessionRecord, to: FlashState, reason: string | null): void {
    const from = record.state;
    record.state = to;
    record.reason = reason;
    record.updatedAt = new Date().toISOString();
    const pairChanges: Array<[FlashPairRecord, FlashState]> = [];
    for (const pair of record.pairs) {
      let pairState = to;
      if (to === 'copying' && record.options.backgroundCopy && this.volumesExist(record) && this.pairShared(pair) === 0) pairState = 'idle-copied';
      if (pair.state !== pairState) {
        pairChanges.push([pair, pair.state]);
        pair.state = pairState;
      }
      pair.reason = to === 'suspended' ? reason : null;
    }
    this.store.save(record);
    if (from !== to) this.stateEvent(record, from, to, reason);
    for (const [pair, pairFrom] of pairChanges) this.stateEvent(record, pairFrom, pair.state, reason, pair);
  }

  private stateEvent(record: FlashSessionRecord, from: FlashState | null, to: FlashState | null, reason: string | null = null, pair?: FlashPairRecord): void {
    const subject = pair ? `${record.name} ${pair.source} -> ${pair.target}` : `flash session ${record.name}`;
    const severity = to === 'suspended' || (to === null && from === 'preparing') ? 'warning' : 'info';
    this.engine.catalog.recordEvent(
      flashEventTypes.state,
      severity,
      record.name,
      `${subject}: ${from ?? 'none'} -> ${to ?? 'none'}${reason ? ` (${reason})` : ''}`,
      { session: record.name, pair: pair?.id, from, to, reason },
    );
  }

  // --- figures ---

  private info(record: FlashSessionRecord): FlashSessionInfo {
    const copier = this.copiers.get(record.name);
    const pairs = record.pairs.map((pair) => this.pairInfo(record, pair));
    const bytesPerSecond = copier?.bytesPerSecond ?? 0;
    const remaining = pairs.reduce((sum, pair) => sum + (pair.totalTracks - pair.copiedTracks), 0) * this.engine.trackSize;
    return {
      name: record.name,
      state: record.state,
      options: { ...record.options },
      coordinated: record.coordinated,
      pairs,
      pointInTime: record.pointInTime,
      holdMs: record.holdMs,
      copyBytesPerSecond: bytesPerSecond,
      etaSeconds: copier && bytesPerSecond > 0 ? Math.ceil(remaining / bytesPerSecond) : copier && remaining === 0 ? 0 : null,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      withdrawnAt: record.withdrawnAt,
    };
  }

  private pairInfo(record: FlashSessionRecord, pair: FlashPairRecord): FlashPairInfo {
    const exists = this.volumesExist(record);
    const totalTracks = exists ? this.engine.volumeMeta(pair.target).trackCount : 0;
    const copiedTracks = exists ? totalTracks - this.pairShared(pair) : 0;
    const state = this.engine.metadata;
    const changed =
      record.options.incremental && !record.withdrawnAt
        ? {
            source: setCount(pair.sourceBitmap === null ? undefined : state.bitmaps.get(pair.sourceBitmap)),
            target: setCount(pair.targetBitmap === null ? undefined : state.bitmaps.get(pair.targetBitmap)),
          }
        : null;
    return {
      id: pair.id,
      source: pair.source,
      target: pair.target,
      state: pair.state,
      trackSize: this.engine.trackSize,
      totalTracks,
      copiedTracks,
      percent: totalTracks === 0 ? (pair.state === 'idle-copied' ? 100 : 0) : percentOf(copiedTracks, totalTracks),
      changedTracks: changed,
      mirror: pair.mirror,
      remoteTarget: pair.remoteTarget,
      reason: pair.reason,
    };
  }

  /** Target tracks still sharing the source's extent (cached per metadata version). */
  private pairShared(pair: FlashPairRecord): number {
    const key = `${pair.source}\u0000${pair.target}`;
    const version = this.engine.metadata.version;
    const cached = this.sharedCache.get(key);
    if (cached && cached.version === version) return cached.shared;
    const shared = sharedTracks(this.engine.volumeMeta(pair.source), this.engine.volumeMeta(pair.target));
    this.sharedCache.set(key, { version, shared });
    return shared;
  }

  private uncopiedTracks(record: FlashSessionRecord): number {
    return record.pairs.reduce((sum, pair) => sum + this.pairShared(pair), 0);
  }

  private volumesExist(record: FlashSessionRecord): boolean {
    return record.pairs.every((pair) => this.volumeExists(pair.source) && this.volumeExists(pair.target));
  }

  private volumeExists(name: string): boolean {
    try {
      this.engine.volumeId(name);
      return true;
    } catch {
      return false;
    }
  }

  // --- rules ---

  private record(name: string): FlashSessionRecord {
    const record = this.sessions.get(name);
    if (!record) throw new ProblemError('not-found', `there is no flash session named ${name}`);
    return record;
  }

  private ready(name: string, action: string): FlashSessionRecord {
    const record = this.record(name);
    if (record.withdrawnAt) throw new ProblemError('invalid-state', `flash session ${name} was withdrawn; establish a new one`);
    if (!READY_STATES.has(record.state)) {
      throw new ProblemError('invalid-state', `flash session ${name} is ${record.state}; ${action} needs it copying, idle-copied or suspended`);
    }
    return record;
  }

  /** Sessions whose relationships exist (not withdrawn), including one being established. */
  private activeSessions(): FlashSessionRecord[] {
    return [...this.sessions.values()].filter((record) => !record.withdrawnAt);
  }

  private validatePairs(request: EstablishFlashRequest): void {
    validatePairs(this.engine, request, this.activeSessions());
  }

  private guard(name: string): VolumeDependent[] {
    return volumeDependents(this.activeSessions(), name);
  }

  private generateName(): string {
    for (let n = this.sessions.size + 1; ; n++) if (!this.sessions.has(`flash-${n}`)) return `flash-${n}`;
  }

  private bitmapOf(id: number | null, volume: string): unknown {
    if (id === null) return undefined;
    const bitmap = this.engine.metadata.bitmaps.get(id);
    if (!bitmap) return undefined;
    try {
      return bitmap.volume === this.engine.volumeId(volume) ? bitmap : undefined;
    } catch {
      return undefined;
    }
  }

  /** Runs admin operations one at a time. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ProblemError('invalid-state', 'the agent is shutting down'));
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => {});
    return run;
  }
}
