import { ProblemError } from '@tandem/contract';
import type { BlockDevice } from '../storage/block-device.ts';
import type { BitmapView } from '../storage/bitmaps.ts';
import type { StorageEngine } from '../storage/engine.ts';
import type { ConsistencyGroupShipper } from './async-groups.ts';
import type { PeerLinkClient } from './link/peer-link.ts';
import type { HeldCopySet } from './session-store.ts';
import type { HostChange, TapWork, TrackSpan, WriteTap } from '../write-path/splitter.ts';
import { localVolumeName } from './copy-set-volumes.ts';

/** How long a track must be quiet before its out-of-sync bit (set as an activity mark) is cleared. */
const ACTIVITY_QUIET_MS = 2000;
/** How often the sweeper looks for activity marks to clear (each time it clears some, the target flushes once). */
const SWEEP_MS = 1000;
/** Resync copies in flight per pair. */
const RESYNC_WINDOW = 16;
/** Resync copies made durable at the target by one `pair.flush` before their marks are cleared. */
const RESYNC_FLUSH_TRACKS = 256;
/** A mirrored write waits this long for a link that is redialling before the pair suspends. */
const WRITE_LINK_WAIT_MS = 1000;
const RESYNC_LINK_WAIT_MS = 5000;

export type MirrorMode = 'sync' | 'semi-sync' | 'async' | 'snapshot-shipping';

export interface PairSourceHooks {
  /** The session decides what a failed send means (suspend every pair, then acknowledge). */
  onLinkFailure(pair: PairSource, error: Error): Promise<void>;
  /** Every marked track is copied and nothing is in flight. */
  onDuplex(pair: PairSource): void;
  /** Progress of a resync, for events and the console. */
  onProgress?(pair: PairSource): void;
}

/**
 * The source side of one pair: the mirror tap in the splitter and the
 * resync of out-of-sync tracks.
 *
 * The out-of-sync bitmap covers every track that might differ. A host write
 * sets its tracks' bits in memory (an activity mark where the bit was clear)
 * and, before the local write starts, waits until their 4 MiB region is
 * durably in the activity log (storage/activity-log.ts): no I/O when the
 * region was written recently, one small synchronous write shared by
 * concurrent writers when not. The bits themselves become durable with the
 * next metadata commit; a region leaves the log only after that. A crash of
 * either site at any instant thus leaves the bitmap, with every track of the
 * regions in the log added at restart, covering every difference. Bits are
 * cleared as the kinds of marks below say.
 *
 * A bit that was set for a real reason (written while suspended, found
 * differing by verify, a failed semi-sync write) stays a real mark when a
 * mirrored write touches the track again: only the resync clears it, by
 * copying the track, so the sweeper never forgets a difference.
 *
 * The invariant (PROTOCOL.md, "No write left behind"): a track leaves the
 * bitmap only once the target holds durably what this site held when it was
 * marked. So every mark is one of three kinds:
 * - a real mark: set while not mirroring, at start (every bit set when
 *   mirroring begins is real: nothing of it is known to be on its way), by
 *   verify or repair, by a flash change. Cleared only by a resync copy the
 *   target made durable (`pair.flush` after a batch of copies), and only when
 *   no host change touched the track meanwhile;
 * - an activity mark (sync, semi-sync): set by a mirrored write on a track
 *   whose bit was clear; the write's send covers it. Cleared by the sweeper
 *   once the track was quiet for a while, after the target flushed;
 * - a stream mark (async): set by a change queued in a consistency group on
 *   a track whose bit was clear; cleared when the newest group holding a
 *   change of it is applied at the target (applied groups are flushed there).
 *   A real mark stays real when a change is queued on its track: the group
 *   carries only part of the track, the rest is what the resync must copy.
 * Stopping (a suspend, a failure) turns every mark real: what was on its way
 * may never arrive. Every request of the stream carries the session's run
 * (`stream.fence`): a target that restarted or fenced a newer run refuses it,
 * so nothing sent before a suspend is applied after the resync that follows.
 *
 * Why one module of ~800 lines: the tap, the resync, the sweeper, snapshot
 * cycles, verify and flash holds all read and change the same per-track
 * state (marks of three kinds, copies in flight, unsettled writes, pins) in
 * one synchronous step each; split, that state would be shared across
 * modules and every invariant above checked in several places.
 */
export class PairSource implements WriteTap {
  readonly order = 20;
  mode: MirrorMode = 'sync';
  /** The session's consistency-group shipper, for async sessions. */
  shipper: ConsistencyGroupShipper | null = null;
  /** Mirroring host writes (preparing or prepared); else writes only mark tracks. */
  mirroring = false;
  /** Why the pair is suspended or failed (null when healthy). */
  reason: string | null = null;
  /** The mirroring run this pair's requests belong to (the target refuses others: see `stream.fence`). */
  run = '';
  /** Host changes per track from the splitter's `beforeWrite` until the local write and the mirror both settled. */
  private readonly unsettled = new Map<number, number>();
  /** Online verify's watches: every track a host change or a resync copy touches is added. */
  private readonly watchers = new Set<Set<number>>();
  /** Tracks being copied by the resync; true once a host write touched them meanwhile. */
  private readonly copying = new Map<number, boolean>();
  /** Activity marks (sync, semi-sync): track -> when last written by a mirrored write. */
  private readonly lastTouched = new Map<number, number>();
  /** Stream marks (async): tracks marked only because changes of them are queued in consistency groups. */
  private readonly streamMarks = new Set<number>();
  /**
   * Resync copies the target answered, not yet made durable there by a
   * flush: track -> true once the copy is void (a flash change or a real
   * mark came after its read). `settling`: the batches being flushed.
   */
  private unflushed = new Map<number, boolean>();
  private readonly settling = new Set<Map<number, boolean>>();
  /** Tracks the current resync copied at least once (a further copy counts as `progress.recopied`). */
  private copiedOnce = new Set<number>();
  private sweeper: NodeJS.Timeout | null = null;
  /** Listening to the link's state (see onLinkState). */
  private watchingLink = false;
  private sweeping = false;
  private resyncing: Promise<void> | null = null;
  private stopRequested = false;
  /** Progress of the current resync. */
  progress = { total: 0, copied: 0, recopied: 0, bytesTotal: 0, bytesSent: 0, startedAt: 0 };
  /**
   * Marks a flash change set on whole tracks (flash-mirror.ts): an applied
   * consistency group carries only part of such a track, so it must not
   * clear the mark; a resync copy or the secondary's own flash does.
   */
  private pinned: Uint8Array | null = null;
  /** A flash change holds new host changes before they reach the target (flash-mirror.ts). */
  private barrier: Promise<void> | null = null;
  /** Settles before a resync copies anything (flash-mirror.ts: a lost request is cancelled first). */
  resyncGate: Promise<void> | null = null;
  /** Snapshot shipping: host writes wait here (before their local write) while the session cuts a cycle. */
  private gate: Promise<void> | null = null;
  /** Joining an async session's consistency groups: new host changes wait here before they choose a path. */
  private joinGate: Promise<void> | null = null;
  /** Sync and semi-sync sends not settled yet. */
  private sending = 0;

  constructor(
    readonly record: HeldCopySet,
    private readonly engine: StorageEngine,
    private readonly link: PeerLinkClient,
    private readonly hooks: PairSourceHooks,
  ) {}

  private get bitmap(): number {
    if (this.record.outOfSyncBitmap === null) throw new Error(`pair ${this.record.id} has no out-of-sync bitmap`);
    return this.record.outOfSyncBitmap;
  }

  private get device(): BlockDevice {
    return this.engine.device(localVolumeName(this.engine, this.record));
  }

  /** Tracks that may differ: set bits, less activity marks of acknowledged mirrored writes. */
  get outOfSyncTracks(): number {
    if (this.record.outOfSyncBitmap === null) return 0;
    const set = this.engine.bitmaps.view(this.record.outOfSyncBitmap).setCount;
    return Math.max(0, set - (this.mirroring ? this.lastTouched.size : 0));
  }

  get isResyncing(): boolean {
    return this.resyncing !== null;
  }

  // --- the tap ---

  beforeWrite(change: HostChange, span: TrackSpan): TapWork {
    const barrier = this.barrier;
    if (!barrier) return this.mirrorWrite(change, span);
    // Held by a flash change (flash-mirror.ts): nothing of this write reaches the target before the release.
    let work: TapWork | undefined;
    const started = barrier.then(() => {
      work = this.mirrorWrite(change, span);
      return work.beforeLocal;
    });
    return { beforeLocal: started, acknowledged: started.then(() => work?.acknowledged) };
  }

  /**
   * The splitter's fast path (Splitter.writeNow): an async copy set that
   * mirrors into an open consistency group, not held by a flash change or a
   * join, whose tracks' activity regions are durable already and have no
   * earlier change unsettled (it keeps its place before this one), takes
   * the change at once. Changes nothing.
   */
  canWriteNow(_change: HostChange, span: TrackSpan): boolean {
    if (!this.mirroring || this.mode !== 'async' || this.barrier || this.joinGate || !this.shipper?.acceptsNow) return false;
    for (let track = span.first; track < span.end; track++) if (this.unsettled.has(track)) return false;
    return this.engine.bitmaps.coveredNow(this.bitmap, span.first, span.end - span.first);
  }

  /** What beforeWrite does for a change canWriteNow took, without waiting: queued in the open consistency group. */
  beforeWriteNow(change: HostChange, span: TrackSpan): void {
    this.noteChange(span, true);
    void this.engine.bitmaps.cover(this.bitmap, span.first, span.end - span.first); // settled already (coveredNow)
    this.queuedMarks(span);
    void this.shipper!.enqueue(this.record, change, span); // not held (acceptsNow): queued now
  }

  private mirrorWrite(change: HostChange, span: TrackSpan): TapWork {
    this.noteChange(span, this.mirroring && this.mode === 'async');
    // Durable enough before the local write: the region is in the activity log (no I/O when it already is).
    const marked = this.engine.bitmaps.cover(this.bitmap, span.first, span.end - span.first);
    if (this.mode === 'snapshot-shipping' && this.gate) return { beforeLocal: Promise.all([marked, this.gate]).then(() => {}) };
    if (this.joinGate) {
      // The path (sync send or consistency group) is chosen once the join is over.
      const gate = this.joinGate;
      const work = Promise.all([marked, gate]).then(() => this.route(change, span, Promise.resolve()));
      return { beforeLocal: work.then((chosen) => chosen.beforeLocal), acknowledged: work.then((chosen) => chosen.acknowledged) };
    }
    return this.route(change, span, marked);
  }

  /** A host change of `span` starts: resync copies and verify watches hear of it; marks of its kind where it mirrors. */
  private noteChange(span: TrackSpan, queued: boolean): void {
    const bitmaps = this.engine.bitmaps;
    const bitmap = this.bitmap;
    const now = Date.now();
    for (let track = span.first; track < span.end; track++) {
      if (this.copying.has(track)) this.copying.set(track, true);
      for (const watch of this.watchers) watch.add(track);
      this.unsettled.set(track, (this.unsettled.get(track) ?? 0) + 1);
      if (!this.mirroring || (bitmaps.isSet(bitmap, track) && !this.lastTouched.has(track) && !this.streamMarks.has(track))) continue;
      // A mark of this write only where the bit is clear or already one of that kind; a real mark stays real.
      if (queued) this.streamMarks.add(track);
      else if (this.mode !== 'snapshot-shipping') this.lastTouched.set(track, now);
    }
  }

  /** Mirrors a host change the way the pair's mode says, once `marked` (its out-of-sync mark) is durable. */
  private route(change: HostChange, span: TrackSpan, marked: Promise<void>): TapWork {
    if (!this.mirroring || this.mode === 'snapshot-shipping') return { beforeLocal: marked };
    if (this.mode === 'async' && this.shipper) {
      this.queuedMarks(span);
      // Queued in the open consistency group before the local write, so before the host's acknowledgement.
      const shipper = this.shipper;
      return { beforeLocal: marked.then(() => shipper.enqueue(this.record, change, span)) };
    }
    this.sending++;
    const run = this.run;
    const acknowledged = marked.then(() => this.send(change, run)).finally(() => this.sending--);
    return { beforeLocal: marked, acknowledged };
  }

  /** A change of `span` goes into a consistency group: activity marks (set while it waited for a join) become stream marks. */
  private queuedMarks(span: TrackSpan): void {
    for (let track = span.first; track < span.end; track++) {
      if (this.lastTouched.delete(track)) this.streamMarks.add(track);
    }
  }

  afterWrite(_change: HostChange, span: TrackSpan): void {
    for (let track = span.first; track < span.end; track++) {
      const left = (this.unsettled.get(track) ?? 1) - 1;
      if (left <= 0) this.unsettled.delete(track);
      else this.unsettled.set(track, left);
    }
  }

  private async send(change: HostChange, run: string): Promise<void> {
    if (!this.mirroring || run !== this.run) return; // suspended while waiting: the mark stays set (a real one now)
    const pair = this.record.id;
    const ack = this.mode === 'semi-sync' ? 'arrival' : 'durable';
    try {
      if (change.kind === 'write') {
        await this.link.call('pair.write', { pair, run, offset: change.offset, ack, fua: change.options?.fua ?? false }, change.data, {
          waitForLinkMs: WRITE_LINK_WAIT_MS,
        });
      } else {
        await this.link.call(
          'pair.trim',
          { pair, run, offset: change.offset, length: change.length, zeroes: change.kind === 'zeroes' },
          null,
          { waitForLinkMs: WRITE_LINK_WAIT_MS },
        );
      }
    } catch (error) {
      // A send of an earlier run failing late (refused as stale, say) changes nothing: its mark turned real when that run stopped.
      if (run === this.run) await this.failed(error);
    }
  }

  /** The host asked for a flush: the target makes everything it acknowledged of this pair durable. */
  async flush(): Promise<void> {
    if (!this.mirroring) return;
    const run = this.run;
    try {
      await this.flushTarget(WRITE_LINK_WAIT_MS);
    } catch (error) {
      if (run === this.run) await this.failed(error);
    }
  }

  /**
   * `pair.flush` at the target: every write it acknowledged of this pair
   * (durable or on arrival) and every resync copy it answered is durable
   * there when this settles, except the tracks it returns: writes of them
   * acknowledged on arrival failed there and are being repaired (their marks
   * stay; the repair marks them for real). Refused when the target restarted
   * meanwhile (the run is unknown there): what it had acknowledged may be lost.
   */
  private async flushTarget(waitForLinkMs: number): Promise<Set<number>> {
    const answer = await this.link.call('pair.flush', { pair: this.record.id, run: this.run }, null, { waitForLinkMs, timeoutMs: 60_000 });
    const repairing = answer.result?.repairing;
    return new Set(Array.isArray(repairing) ? repairing.filter((track): track is number => Number.isSafeInteger(track)) : []);
  }

  private async failed(error: unknown): Promise<void> {
    // A refusal by the target counts like a link failure: the marks are set, the session suspends.
    const reason = error instanceof Error ? error : new Error(String(error));
    await this.hooks.onLinkFailure(this, reason);
  }

  // --- state ---

  /**
   * Mirror host writes from now on (the caller then runs `resync`), as part
   * of `run`, the session's mirroring run the target was fenced for. Every
   * mark set now is a real one.
   */
  startMirroring(mode: MirrorMode, run: string): void {
    // A new run: nothing of an earlier one is on its way any more (stopping made its marks real already).
    if (run !== this.run || !this.mirroring) {
      this.lastTouched.clear();
      this.streamMarks.clear();
    }
    this.mode = mode;
    this.run = run;
    this.mirroring = true;
    this.reason = null;
    this.stopRequested = false;
    if (!this.sweeper) {
      this.sweeper = setInterval(() => void this.sweep(), SWEEP_MS);
      this.sweeper.unref();
    }
    if (!this.watchingLink) {
      this.watchingLink = true;
      this.link.on('state', this.onLinkState);
    }
  }

  /**
   * The link came back while mirroring: the target may have restarted meanwhile and lost what it acknowledged
   * but had not made durable. Asked at once (`pair.flush` of this run), not at the next host write: a target that
   * restarted knows no run and refuses, so the session suspends and resyncs what the marks cover within seconds,
   * instead of reading prepared until production writes again.
   */
  private readonly onLinkState = (state: string): void => {
    if (state !== 'connected' || !this.mirroring || this.isResyncing) return;
    void this.flush();
  };

  /**
   * A copy set added to a running async session copies like a sync pair
   * (every host write sent and acknowledged by the target) until it is
   * duplex, then joins the session's consistency groups here: new host
   * changes wait while the sends in flight settle, then go into the groups.
   * From that instant the target holds exactly this volume's acknowledged
   * writes, so the first group applied afterwards is a consistent image of
   * it too.
   */
  async joinGroups(shipper: ConsistencyGroupShipper): Promise<void> {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    this.joinGate = gate;
    try {
      while (this.sending > 0) await new Promise((resolve) => setTimeout(resolve, 2));
      // Activity marks of acknowledged sends stay until the sweeper cleared them (after the target flushed);
      // those of changes waiting at the gate become stream marks when queued (see `route`).
      this.shipper = shipper;
      this.mode = 'async';
    } finally {
      this.joinGate = null;
      release();
    }
  }

  /** Stop mirroring: host writes only mark tracks. Waits for a running resync to stop. */
  async stopMirroring(reason: string | null): Promise<void> {
    this.mirroring = false;
    this.reason = reason;
    this.stopRequested = true;
    // Activity and stream marks become real out-of-sync marks: what was on its way may never arrive.
    this.lastTouched.clear();
    this.streamMarks.clear();
    if (this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
    await this.resyncing?.catch(() => {});
  }

  /**
   * Clears activity marks of tracks quiet long enough with nothing of them
   * in flight, once the target flushed (their writes were acknowledged, not
   * necessarily durable there); and stream marks nothing is queued for any
   * more (their groups were applied, and flushed, at the target).
   */
  private async sweep(): Promise<void> {
    if (!this.mirroring || this.isResyncing || this.sweeping || this.record.outOfSyncBitmap === null) return;
    const bitmap = this.record.outOfSyncBitmap;
    const idle = (track: number) => !this.unsettled.has(track) && !this.copying.has(track) && !this.shipper?.isPending(this.record.id, track);
    for (const track of this.streamMarks) {
      if (!idle(track)) continue;
      this.streamMarks.delete(track);
      if (!this.isPinned(track)) this.engine.bitmaps.clear(bitmap, track, 1);
    }
    const now = Date.now();
    const quiet = new Map<number, number>();
    for (const [track, touched] of this.lastTouched) {
      if (now - touched >= ACTIVITY_QUIET_MS && idle(track)) quiet.set(track, touched);
    }
    if (quiet.size === 0) return;
    this.sweeping = true;
    const run = this.run;
    let repairing: Set<number>;
    try {
      repairing = await this.flushTarget(WRITE_LINK_WAIT_MS);
    } catch (error) {
      this.sweeping = false;
      // The target may have lost what it acknowledged (it restarted, or the link died): the marks stay and turn real.
      if (run === this.run && this.mirroring) await this.failed(error);
      return;
    }
    this.sweeping = false;
    if (run !== this.run || !this.mirroring) return;
    for (const [track, touched] of quiet) {
      // Written again since (a newer time), or turned real: not this sweep's to clear.
      if (this.lastTouched.get(track) !== touched || !idle(track)) continue;
      this.lastTouched.delete(track);
      // Not held there: a real mark until the repair (or the resync) copied it.
      if (!repairing.has(track)) this.engine.bitmaps.clear(bitmap, track, 1);
    }
  }

  // --- resync ---

  /**
   * Copies every marked track to the target (only those), until none is
   * left; runs again over tracks marked meanwhile. Settles when duplex or
   * stopped; a link failure suspends through the hooks.
   */
  resync(): Promise<void> {
    if (this.resyncing) return this.resyncing;
    const run = this.runResync().finally(() => {
      this.resyncing = null;
    });
    this.resyncing = run;
    return run;
  }

  private async runResync(): Promise<void> {
    // A flash change the target may still perform late is settled before any track is copied.
    while (this.resyncGate) await this.resyncGate;
    const view = this.engine.bitmaps.view(this.bitmap);
    this.progress = { total: this.outOfSyncTracks, copied: 0, recopied: 0, bytesTotal: this.dataToCopy(view), bytesSent: 0, startedAt: Date.now() };
    try {
      // Passes over the bitmap until one finds nothing to copy. Tracks marked by
      // mirrored host writes (activity marks) are in sync and are skipped.
      while (!this.stopRequested && this.mirroring) {
        let cursor = 0;
        let copied = 0;
        let deferred = 0;
        let failure: { error: unknown } | null = null;
        const worker = async () => {
          for (;;) {
            // (Also while running: a flash change may gate the copies anew; the checks below follow the wait.)
            while (this.resyncGate) await this.resyncGate;
            if (this.stopRequested || !this.mirroring || failure) return;
            const track = view.nextSet(cursor);
            if (track < 0) return;
            cursor = track + 1;
            // Activity and stream marks are on their way; a real mark is copied even with a change queued
            // (the group carries only part of the track).
            if (this.lastTouched.has(track) || (this.streamMarks.has(track) && this.shipper?.isPending(this.record.id, track))) continue;
            // A real mark on a track with a host change in flight is copied once it settled.
            if (this.copying.has(track) || this.unsettled.has(track)) {
              deferred++;
              continue;
            }
            try {
              await this.copyTrack(track);
            } catch (error) {
              failure ??= { error };
              return;
            }
            copied++;
          }
        };
        // Every worker ends before the pass does (none still copies once the resync returned).
        await Promise.all(Array.from({ length: RESYNC_WINDOW }, worker));
        if (failure) throw (failure as { error: unknown }).error;
        if (this.stopRequested || !this.mirroring) return;
        await this.settleCopies();
        if (copied === 0 && deferred === 0) {
          this.hooks.onDuplex(this);
          return;
        }
        if (copied === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } catch (error) {
      // Not awaited: suspending waits for this resync to end.
      void this.failed(error);
    } finally {
      // Copies not made durable at the target keep their marks.
      this.unflushed = new Map();
      this.copiedOnce = new Set();
    }
  }

  /** Bytes of data the resync moves: the allocated part of every really marked track (an unallocated one is a trim). */
  private dataToCopy(view: BitmapView): number {
    const device = this.device;
    let bytes = 0;
    for (let track = view.nextSet(0); track >= 0; track = view.nextSet(track + 1)) {
      if (this.lastTouched.has(track) || this.streamMarks.has(track)) continue;
      const offset = track * device.trackSize;
      for (const run of device.allocationMap(offset, Math.min(device.trackSize, device.sizeBytes - offset))) if (run.allocated) bytes += run.length;
    }
    return bytes;
  }

  private async copyTrack(track: number): Promise<void> {
    const device = this.device;
    const offset = track * device.trackSize;
    const length = Math.min(device.trackSize, device.sizeBytes - offset);
    let raced: boolean;
    this.copying.set(track, false);
    for (const watch of this.watchers) watch.add(track);
    try {
      const runs = device.allocationMap(offset, length);
      const pair = this.record.id;
      const run = this.run;
      if (runs.length === 1 && !runs[0].allocated) {
        await this.link.call('pair.trim', { pair, run, offset, length, zeroes: false }, null, { waitForLinkMs: RESYNC_LINK_WAIT_MS });
      } else {
        const data = Buffer.allocUnsafe(length);
        await device.readInto(offset, data);
        await this.link.call('pair.write', { pair, run, offset, ack: 'durable', fua: false }, data, { waitForLinkMs: RESYNC_LINK_WAIT_MS });
        this.progress.bytesSent += length;
      }
    } finally {
      // A host change between the read and the answer may reach the target before or after the copy: the copy is void.
      raced = this.copying.get(track) !== false;
      this.copying.delete(track);
    }
    // Its mark goes once the target made it durable (`settleCopies`); a void copy is made again.
    if (!raced) this.unflushed.set(track, false);
    if (this.copiedOnce.has(track)) this.progress.recopied++;
    else this.copiedOnce.add(track);
    this.progress.copied++;
    this.hooks.onProgress?.(this);
    if (this.unflushed.size >= RESYNC_FLUSH_TRACKS) await this.settleCopies();
  }

  /** A flash change or a real mark came after a copy's read: the copy no longer clears the track's mark. */
  private voidCopy(track: number): void {
    for (const batch of [this.unflushed, ...this.settling]) if (batch.has(track)) batch.set(track, true);
  }

  /**
   * Makes the copies answered so far durable at the target (one
   * `pair.flush`), then lets their real marks go. A host change of a copied
   * track after the copy's answer reached the target after the copy (a
   * mirrored send or a queued group), so the track is in sync once that
   * change is: it keeps its mark as that change's kind (an activity mark
   * when sent, a stream mark while queued in a group, which holds only part
   * of the track) when the change had not settled when the flush was sent,
   * came during the flush, or is still queued; otherwise the mark goes.
   */
  private async settleCopies(): Promise<void> {
    const batch = this.unflushed;
    if (batch.size === 0) return;
    this.unflushed = new Map();
    this.settling.add(batch);
    const busy = new Set(this.unsettled.keys());
    const touched = this.watch();
    try {
      await this.flushTarget(RESYNC_LINK_WAIT_MS);
      if (!this.mirroring) return;
      const now = Date.now();
      for (const [track, voided] of batch) {
        if (voided) continue;
        this.unpin(track);
        const queued = this.shipper !== null && this.mode === 'async' && this.shipper.isPending(this.record.id, track);
        if (queued || busy.has(track) || touched.has(track)) {
          if (this.mode === 'async' && this.shipper) this.streamMarks.add(track);
          else this.lastTouched.set(track, now);
        } else this.engine.bitmaps.clear(this.bitmap, track, 1);
      }
    } finally {
      this.unwatch(touched);
      this.settling.delete(batch);
    }
  }

  /**
   * A consistency group holding these tracks (each the newest group with a
   * change of it) was applied at the target, and flushed there: their stream
   * marks go. Real marks stay (the resync copies them).
   */
  groupApplied(tracks: Set<number>): void {
    if (this.record.outOfSyncBitmap === null) return;
    for (const track of tracks) {
      if (!this.streamMarks.has(track) || this.copying.has(track) || this.unsettled.has(track) || this.isPinned(track)) continue;
      this.streamMarks.delete(track);
      this.engine.bitmaps.clear(this.record.outOfSyncBitmap, track, 1);
    }
  }

  // --- snapshot shipping cycles ---

  /** Holds new host writes before their local write until `release` is called (the session's cut). */
  hold(): () => void {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    this.gate = gate;
    return () => {
      if (this.gate === gate) this.gate = null;
      release();
    };
  }

  /**
   * The cut of a shipping cycle (writes held): the tracks marked now are
   * the cycle's. A track whose host change has not settled is also the next
   * cycle's: its bit stays set after this cycle (like a host write during the cycle).
   */
  beginCycle(): number[] {
    const view = this.engine.bitmaps.view(this.bitmap);
    const tracks: number[] = [];
    this.copying.clear();
    for (let track = view.nextSet(0); track >= 0; track = view.nextSet(track + 1)) {
      tracks.push(track);
      this.copying.set(track, this.unsettled.has(track));
    }
    return tracks;
  }

  /** The cycle ended: when the target committed it, the marks of tracks no host wrote since the cut go. */
  endCycle(committed: boolean): number {
    let cleared = 0;
    if (committed && this.record.outOfSyncBitmap !== null) {
      for (const [track, rewritten] of this.copying) {
        if (rewritten || this.unsettled.has(track)) continue;
        this.engine.bitmaps.clear(this.record.outOfSyncBitmap, track, 1);
        cleared++;
      }
    }
    this.copying.clear();
    return cleared;
  }

  // --- online verify and repair ---

  /** Starts recording every track a host change or a resync copy touches from now on. */
  watch(): Set<number> {
    const touched = new Set<number>();
    this.watchers.add(touched);
    return touched;
  }

  unwatch(touched: Set<number>): void {
    this.watchers.delete(touched);
  }

  /** A host change or a resync copy of the track has not settled yet, or a change of it is queued in a consistency group. */
  isBusy(track: number): boolean {
    return this.unsettled.has(track) || this.copying.has(track) || (this.streamMarks.has(track) && this.shipper?.isPending(this.record.id, track) === true);
  }

  /** A real out-of-sync mark (not an activity or stream mark of mirrored changes) is set on the track. */
  isMarked(track: number): boolean {
    return this.engine.bitmaps.isSet(this.bitmap, track) && !this.lastTouched.has(track) && !this.streamMarks.has(track);
  }

  /** Marks tracks out-of-sync for real (durable when settled): the next resync copies them. */
  async mark(tracks: number[]): Promise<void> {
    for (const track of tracks) {
      this.lastTouched.delete(track);
      this.streamMarks.delete(track);
      this.voidCopy(track);
      await this.engine.bitmaps.set(this.bitmap, track, 1);
    }
  }

  /**
   * Marks tracks and copies them to the target with the resync (which
   * copies again when a host write raced the copy). Settles when none of
   * them is marked any more, or when mirroring stopped (they stay marked).
   */
  async repair(tracks: number[]): Promise<boolean> {
    await this.mark(tracks);
    for (;;) {
      if (!this.mirroring) return false;
      await this.resync();
      if (!tracks.some((track) => this.isMarked(track))) return true;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  // --- flash copy onto a mirrored primary (flash-mirror.ts) ---

  /**
   * Holds new host changes before anything of them reaches the target (no
   * send, no queueing, no mark) until the returned release is called.
   * Changes already past this point keep going.
   */
  holdMirroring(): () => void {
    let release!: () => void;
    const barrier = new Promise<void>((resolve) => (release = resolve));
    this.barrier = barrier;
    return () => {
      if (this.barrier === barrier) this.barrier = null;
      release();
    };
  }

  /** Something of this pair is on its way to the target: a mirrored change not answered, a resync copy, or a queued change not applied there. */
  get streamBusy(): boolean {
    if (this.sending > 0 || this.copying.size > 0) return true;
    const shipper = this.shipper;
    if (!shipper || this.record.outOfSyncBitmap === null) return false;
    // Queued async changes keep their tracks marked until applied: only marked tracks can be pending.
    const view = this.engine.bitmaps.view(this.record.outOfSyncBitmap);
    for (let track = view.nextSet(0); track >= 0; track = view.nextSet(track + 1)) {
      if (shipper.isPending(this.record.id, track)) return true;
    }
    return false;
  }

  /** Resync copies on their way to the target right now. */
  get copiesInFlight(): number {
    return this.copying.size;
  }

  /** Tracks of host changes that passed the mirror step and are not settled (their local write may still be to come). */
  unsettledTracks(): number[] {
    return [...this.unsettled.keys()];
  }

  private isPinned(track: number): boolean {
    return this.pinned !== null && (this.pinned[track >>> 3] & (1 << (track & 7))) !== 0;
  }

  private unpin(track: number): void {
    if (this.pinned) this.pinned[track >>> 3] &= ~(1 << (track & 7));
  }

  /**
   * Marks runs of tracks out-of-sync for real before a flash copy changes
   * their content here (durable when settled). Activity marks among them
   * become real marks, so the sweeper cannot clear them.
   */
  async markRuns(runs: Array<{ start: number; count: number }>): Promise<void> {
    const trackCount = this.engine.bitmaps.view(this.bitmap).trackCount;
    this.pinned ??= new Uint8Array(Math.ceil(trackCount / 8));
    for (const run of runs) {
      for (let track = run.start; track < Math.min(run.start + run.count, trackCount); track++) {
        this.lastTouched.delete(track);
        this.streamMarks.delete(track);
        // A resync copy in flight (or answered, not flushed yet) read the track before this change: it must not clear the new mark.
        if (this.copying.has(track)) this.copying.set(track, true);
        this.voidCopy(track);
        this.pinned[track >>> 3] |= 1 << (track & 7);
      }
    }
    await Promise.all(runs.map((run) => this.engine.bitmaps.set(this.bitmap, run.start, run.count)));
  }

  /**
   * The target site made the same flash change itself: the marks of these
   * tracks go, except those in `keep` and where something newer must still reach the target (a
   * queued consistency group or a resync copy keeps the mark; a mirrored
   * host change in flight turns it into an activity mark, cleared when the
   * track is quiet, or a real mark again if the pair suspends).
   */
  unmarkRuns(runs: Array<{ start: number; count: number }>, keep: ReadonlySet<number> = new Set()): number {
    if (this.record.outOfSyncBitmap === null) return 0;
    const bitmap = this.record.outOfSyncBitmap;
    const view = this.engine.bitmaps.view(bitmap);
    const now = Date.now();
    let cleared = 0;
    for (const run of runs) {
      let clearFrom = -1;
      const flushRun = (end: number) => {
        if (clearFrom >= 0) this.engine.bitmaps.clear(bitmap, clearFrom, end - clearFrom);
        clearFrom = -1;
      };
      for (let track = run.start; track < run.start + run.count; track++) {
        if (!view.isSet(track)) {
          this.unpin(track);
          flushRun(track);
          continue;
        }
        if (keep.has(track) || this.copying.has(track)) {
          // Stays pinned: a resync copy clears it.
          flushRun(track);
          continue;
        }
        this.unpin(track);
        // A change queued or in flight after the flash reaches the target on its own: its group or the sweeper clears the mark.
        const queued = this.shipper?.isPending(this.record.id, track) === true;
        const inFlight = this.unsettled.has(track);
        if (queued || inFlight) {
          flushRun(track);
          // The queued group brings the target up to date (a stream mark); a mirrored send is an activity mark.
          if (queued) this.streamMarks.add(track);
          else if (this.mirroring && this.mode !== 'async') this.lastTouched.set(track, now);
          continue;
        }
        if (clearFrom < 0) clearFrom = track;
        cleared++;
      }
      flushRun(run.start + run.count);
    }
    return cleared;
  }

  dispose(): void {
    this.mirroring = false;
    this.stopRequested = true;
    if (this.watchingLink) this.link.off('state', this.onLinkState);
    this.watchingLink = false;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  /** Disposes and waits for a resync in progress to end (at agent shutdown, before the engine closes). */
  async close(): Promise<void> {
    this.dispose();
    await this.resyncing?.catch(() => {});
  }
}

export { problemMessage } from './problem-message.ts';
