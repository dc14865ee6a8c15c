import { ProblemError, type GroupEntry, type PeerParamsIn } from '@tandem/contract';
import { MAX_FRAME_BYTES } from './link/frames.ts';
import type { PeerLinkClient } from './link/peer-link.ts';
import type { HeldCopySet } from './session-store.ts';
import { stagePart, type PartPayload } from './parts.ts';
import { SlabPool, type Slab } from './slabs.ts';
import type { HostChange, TrackSpan } from '../write-path/splitter.ts';

/** One change inside a consistency group, as shipped (the peer protocol's schema). */
export type { GroupEntry };

export interface SealedGroup {
  number: number;
  /** Multi-primary sessions: the coordinator's cut round this part belongs to (0 otherwise). */
  round: number;
  /** The cut: every write acknowledged to a host before this instant is in this group or an earlier one. */
  time: number;
  entries: GroupEntry[];
  payload: Buffer[];
  bytes: number;
  /** Pair id -> tracks this group changes. */
  tracks: Map<string, Set<number>>;
  /** The slabs holding its payload's chunks (given back once the group shipped; see slabs.ts). */
  slabs?: Slab[];
  /** Multi-primary: markers inside this part (`marker` entries), settled once the coordinator committed its round. */
  markers?: StreamMarker[];
  /** The coordinator was told this part outgrew a frame's group (`CoordinatedOptions.full`). */
  full?: boolean;
}

/** A request carried in the consistency-group stream (flash-mirror.ts: a flash at the matching point). */
export interface StreamMarker {
  /** Only flash copy's requests travel in a stream today. */
  method: 'flash.mirror';
  params: PeerParamsIn<'flash.mirror'>;
  payload: Buffer | null;
  resolve: (answer: { result: unknown; payload: Buffer | null }) => void;
  reject: (error: Error) => void;
}

export interface ShipperHooks {
  /** The target applied a group: clear out-of-sync bits of tracks nothing newer touches. */
  onApplied(group: SealedGroup): void;
  /** Shipping failed or the backlog grew too large: the session falls back to bitmaps. */
  onFailure(error: Error): void;
}

/** The coordinator is asked for a round early once the open part holds this much data (a quarter of a peer-link frame). */
const MAX_GROUP_BYTES = MAX_FRAME_BYTES / 4;

/**
 * A multi-primary session's part of the cut: this agent's share of a group
 * whose boundary the session's coordinator chooses (see rounds.ts).
 */
export interface CoordinatedOptions {
  /** This agent's id: the secondary stages parts per primary agent. */
  agentId: string;
  /** How long a hold may last before this agent releases it on its own (the round is then not cut here). */
  holdTimeoutMs: number;
  /**
   * Stages a sealed part at the session's secondaries (default: `cg.stage`
   * over the shipper's link). A session whose targets live on several agents
   * (multi-primary after failback) splits the part per target agent here.
   */
  stage?: (part: { run: string; epoch: string; from: string; round: number; time: number; entries: GroupEntry[] }, payload: PartPayload) => Promise<void>;
  /** The open part passed the size of one link frame's group: the coordinator may cut a round now (once per part). */
  full?: () => void;
  /** This agent's part of round `round` of coordinator run `epoch` is staged at every secondary. */
  staged?: (epoch: string, round: number, empty: boolean) => void;
}
const DEFAULT_MAX_BACKLOG_BYTES = 256 * 1024 * 1024;

/** Writes' data is copied into slabs of this size (writes over a quarter of it into buffers of their own). */
const SLAB_BYTES = 4 * 1024 * 1024;
/** Free slabs kept for reuse per shipper. */
const KEPT_SLABS = 4;

/**
 * The consistency-group shipper of an async session at one of its source
 * agents (every async session, with one primary agent or several). Host
 * writes of the agent's copy sets go into the open part (copied: NBD reuses
 * its buffers) before the host is acknowledged. The session's coordinator
 * (cut-coordinator.ts) holds new writes, reads its clock and has every
 * source seal its open part as its share of the round, in one synchronous
 * step: a write that depends on another (issued after the other's
 * acknowledgement) can never be in an earlier round than it. Parts are
 * staged at the secondaries in order and applied all-or-nothing when the
 * coordinator commits their round, so the targets' image is always the
 * sources' at the last committed round's cut (the session's consistency time).
 */
export class ConsistencyGroupShipper {
  /** The mirroring run the groups ship in (every `cg.stage` names it; see stream-fence.ts). */
  private run = '';
  private open: SealedGroup;
  private readonly sealed: SealedGroup[] = [];
  private nextNumber = 1;
  private shipping = false;
  private stopped = false;
  /** Pair id -> (track -> the newest group holding a change of that track). */
  private readonly newest = new Map<string, Map<number, number>>();
  /**
   * Where small writes' data is copied (NBD reuses its buffers): a slab
   * filled front to back, each group's run of it one payload chunk, so a
   * write costs a copy, not a buffer of its own (the chunk is only read
   * after the write, so groups share a slab safely).
   */
  private fill: { group: SealedGroup; index: number; slab: Slab; start: number } | null = null;
  private readonly slabs = new SlabPool(SLAB_BYTES, KEPT_SLABS);
  lastApplied: { number: number; time: number } | null = null;
  /** Stream markers not answered yet (rejected when shipping stops). */
  private readonly markers = new Set<StreamMarker>();
  private backlog = 0;
  /** Multi-primary: the hold of the coordinator's current round (new host changes wait until it ends). */
  private held: { round: number; epoch: string; gate: Promise<void>; release: () => void; timer: NodeJS.Timeout } | null = null;
  /** Multi-primary: parts staged at the secondary and not committed yet, oldest first. */
  private readonly staged: SealedGroup[] = [];
  /** Multi-primary: the last round whose part the secondary acknowledged as staged. */
  stagedThrough = 0;
  /** Multi-primary with the test-only hold switch off: the round being cut. */
  private pendingRound = 0;
  /** Bumped by `stop`: a shipping loop of an earlier run ends instead of touching the new run's groups. */
  private generation = 0;
  /** Multi-primary: the coordinator's epoch of the current run (parts of other epochs are never committed). */
  private coordinatorEpoch = '';
  /** Test-only: holds do nothing (the cut is no longer coordinated); proves the coordinated test can fail. */
  static disableHoldForTests = process.env.TANDEM_TEST_DISABLE_CUT_HOLD === '1';

  constructor(
    private readonly sessionId: string,
    private readonly link: PeerLinkClient,
    private readonly hooks: ShipperHooks,
    private readonly options: { maxBacklogBytes?: number; coordinated: CoordinatedOptions },
  ) {
    this.open = this.newGroup();
  }

  private newGroup(): SealedGroup {
    return { number: this.nextNumber++, round: 0, time: 0, entries: [], payload: [], bytes: 0, tracks: new Map() };
  }

  /** Ships from now on as part of mirroring run `run` (the targets were fenced for it). */
  start(run: string): void {
    this.run = run;
    this.stopped = false;
  }

  /** Stops shipping and drops what is queued (the out-of-sync bits still cover it). */
  stop(): void {
    this.stopped = true;
    this.sealed.length = 0;
    this.staged.length = 0;
    for (const marker of this.markers) marker.reject(new ProblemError('link-down', 'the session stopped shipping consistency groups'));
    this.markers.clear();
    this.open = this.newGroup();
    this.newest.clear();
    this.fill = null;
    this.backlog = 0;
    this.stagedThrough = 0;
    this.generation++;
    this.shipping = false; // a loop still awaiting the link ends by itself (its generation is old)
    this.endHold();
  }

  get backlogBytes(): number {
    return this.backlog;
  }

  /** The backlog past which the session suspends (falls back to bitmaps). */
  get backlogLimitBytes(): number {
    return this.options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES;
  }

  /** True while a queued group still holds a change of this track (a resync need not copy it). */
  isPending(pair: string, track: number): boolean {
    return this.newest.get(pair)?.has(track) === true;
  }

  /** enqueue takes a change at once: the shipper runs and no round holds it. */
  get acceptsNow(): boolean {
    return !this.stopped && this.held === null;
  }

  /**
   * Adds a host change to the open group. Call before the host is
   * acknowledged. While the coordinator holds a round the change waits (it is
   * queued, never failed) and goes into the group after the cut.
   */
  enqueue(pair: HeldCopySet, change: HostChange, span: TrackSpan): void | Promise<void> {
    if (this.stopped) return;
    if (this.held) return this.held.gate.then(() => this.enqueue(pair, change, span));
    const group = this.open;
    const length = change.kind === 'write' ? change.data.length : change.length;
    const entry: GroupEntry = { pair: pair.id, kind: change.kind, offset: change.offset, length, dataOffset: group.bytes };
    if (change.kind === 'write') {
      this.copyIn(group, change.data);
      group.bytes += length;
      this.backlog += length;
    }
    group.entries.push(entry);
    let tracks = group.tracks.get(pair.id);
    if (!tracks) {
      tracks = new Set();
      group.tracks.set(pair.id, tracks);
    }
    let newest = this.newest.get(pair.id);
    if (!newest) {
      newest = new Map();
      this.newest.set(pair.id, newest);
    }
    for (let track = span.first; track < span.end; track++) {
      tracks.add(track);
      newest.set(track, group.number);
    }
    if (this.backlog > (this.options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES)) {
      this.hooks.onFailure(new Error(`the async backlog passed ${this.options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES} bytes`));
    } else if (group.bytes >= MAX_GROUP_BYTES && !group.full) {
      // A burst: the coordinator cuts the next round now rather than at the end of its interval.
      group.full = true;
      this.options.coordinated.full?.();
    }
  }

  /** Appends a write's data to the group's payload (a copy: the caller's buffer is reused). */
  private copyIn(group: SealedGroup, data: Buffer): void {
    if (data.length > SLAB_BYTES / 4) {
      group.payload.push(Buffer.from(data));
      return;
    }
    let fill = this.fill;
    if (!fill || fill.slab.buffer.length - fill.slab.used < data.length) {
      if (fill) this.slabs.doneFilling(fill.slab);
      fill = this.fill = { group, index: group.payload.length, slab: this.slabs.take(), start: 0 };
      group.payload.push(fill.slab.buffer.subarray(0, 0));
      this.holdSlab(group, fill.slab);
    } else if (fill.group !== group || fill.index !== group.payload.length - 1) {
      // Another group, or another chunk went in after this one: a new chunk from here on.
      fill.group = group;
      fill.index = group.payload.length;
      fill.start = fill.slab.used;
      group.payload.push(fill.slab.buffer.subarray(fill.start, fill.start));
      this.holdSlab(group, fill.slab);
    }
    const slab = fill.slab;
    data.copy(slab.buffer, slab.used);
    slab.used += data.length;
    group.payload[fill.index] = slab.buffer.subarray(fill.start, slab.used);
  }

  /** `group` has a chunk in `slab`: the slab is not reused before the group shipped. */
  private holdSlab(group: SealedGroup, slab: Slab): void {
    const held = (group.slabs ??= []);
    if (held.includes(slab)) return;
    held.push(slab);
    slab.refs++;
  }

  /** The group shipped and was answered: its slabs may be reused. */
  private releaseSlabs(group: SealedGroup): void {
    if (group.slabs) this.slabs.release(group.slabs);
    group.slabs = undefined;
  }

  // --- multi-primary: the coordinator's two-phase cut ---

  /**
   * Phase one of round `round`: from now on new host changes wait. Bounded:
   * after `holdTimeoutMs` without the cut this agent releases by itself and
   * the round gets no part from here (a later round covers its changes).
   */
  hold(round: number, epoch: string): void {
    const coordinated = this.options.coordinated;
    if (this.stopped) throw new ProblemError('invalid-state', 'this copy set is not mirroring');
    this.endHold();
    if (epoch !== this.coordinatorEpoch) this.stagedThrough = 0; // a new run of the coordinator numbers rounds afresh
    this.coordinatorEpoch = epoch;
    if (ConsistencyGroupShipper.disableHoldForTests) {
      this.held = null;
      this.pendingRound = round;
      return;
    }
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const timer = setTimeout(() => this.endHold(), coordinated.holdTimeoutMs);
    timer.unref();
    this.held = { round, epoch, gate, release, timer };
  }

  /** Ends a hold without a cut (timeout, or the coordinator gave the round up). */
  endHold(round?: number): void {
    const held = this.held;
    if (!held || (round !== undefined && held.round !== round)) return;
    clearTimeout(held.timer);
    this.held = null;
    held.release();
  }

  /**
   * Phase two: seals this agent's part of round `round` at the coordinator's cut
   * time and releases the held host changes (they go into the next part).
   * Refused when this agent no longer holds that round.
   */
  cut(round: number, time: number): void {
    const holding = this.held?.round === round || (ConsistencyGroupShipper.disableHoldForTests && this.pendingRound === round);
    if (this.stopped || !holding) {
      throw new ProblemError('invalid-state', `round ${round} is not held here (its hold expired); a later round covers it`);
    }
    const group = this.open;
    group.round = round;
    group.time = time;
    // An empty part is shipped too: the secondary learns this agent has nothing before the cut.
    this.sealed.push(group);
    this.open = this.newGroup();
    this.endHold(round);
    void this.ship();
  }

  /**
   * The coordinator committed every round through `round` at the secondary: the
   * parts' tracks are in the secondary image and their marks can go.
   */
  committed(round: number): void {
    while (this.staged.length > 0 && this.staged[0].round <= round) {
      const group = this.staged.shift()!;
      this.forget(group);
      this.lastApplied = { number: group.round, time: group.time };
      this.hooks.onApplied(group);
      // The secondary applied the part, so it ran the part's markers at their place (it keeps their outcome).
      for (const marker of group.markers ?? []) marker.resolve({ result: { round: group.round }, payload: null });
    }
  }

  /** Drops a shipped group from the pending-track index (tracks a newer group touches keep their marks). */
  private forget(group: SealedGroup): void {
    for (const [pair, tracks] of group.tracks) {
      const newest = this.newest.get(pair);
      for (const track of tracks) {
        if (newest?.get(track) === group.number) newest.delete(track);
        else tracks.delete(track); // a newer group changes it again: its bit stays set
      }
      if (newest?.size === 0) this.newest.delete(pair);
    }
  }

  /**
   * Sends a request at this point of the stream: it becomes a `marker`
   * entry of this agent's open part, after every change queued so far and
   * before any later one (a change waiting for the coordinator's hold goes
   * after it). The secondary runs it while applying the committed round,
   * between the part's entries before and after it. It settles (with
   * `{round}`, not the target's answer) once the coordinator committed that
   * round: whoever placed it asks the secondary for the outcome. `pair`
   * names the copy set the marker belongs to.
   */
  mark(
    method: 'flash.mirror',
    params: PeerParamsIn<'flash.mirror'>,
    payload: Buffer | null = null,
    pair = '',
  ): Promise<{ result: unknown; payload: Buffer | null }> {
    if (this.stopped) return Promise.reject(new ProblemError('link-down', 'the session is not shipping consistency groups'));
    return new Promise((resolve, reject) => {
      const marker: StreamMarker = {
        method,
        params,
        payload,
        resolve: (answer) => {
          this.markers.delete(marker);
          resolve(answer);
        },
        reject: (error) => {
          this.markers.delete(marker);
          reject(error);
        },
      };
      this.markers.add(marker);
      const group = this.open;
      const length = payload?.length ?? 0;
      group.entries.push({ pair, kind: 'marker', offset: 0, length, dataOffset: group.bytes, marker: { method, params } });
      if (payload && length > 0) {
        group.payload.push(Buffer.from(payload));
        group.bytes += length;
        this.backlog += length;
      }
      (group.markers ??= []).push(marker);
    });
  }

  private async ship(): Promise<void> {
    if (this.shipping) return;
    this.shipping = true;
    const generation = this.generation;
    try {
      while (!this.stopped && this.sealed.length > 0) {
        const group = this.sealed[0];
        const coordinated = this.options.coordinated;
        // The slabs go out as they are (a frame's payload in chunks): no copy into one buffer.
        const payload = group.payload;
        // Staged only: the secondary applies it when the coordinator commits its round everywhere.
        const part = { run: this.run, epoch: this.coordinatorEpoch, from: coordinated.agentId, round: group.round, time: group.time, entries: group.entries };
        if (coordinated.stage) await coordinated.stage(part, payload);
        else {
          const header = { session: this.sessionId, run: part.run, epoch: part.epoch, from: part.from, round: part.round, time: part.time };
          await stagePart(this.link, header, group.entries, payload);
        }
        if (this.stopped || generation !== this.generation) return;
        this.sealed.shift();
        this.backlog -= group.bytes;
        group.payload = [];
        this.releaseSlabs(group);
        this.staged.push(group);
        this.stagedThrough = group.round;
        coordinated.staged?.(part.epoch, group.round, group.entries.length === 0);
      }
    } catch (error) {
      if (!this.stopped && generation === this.generation) this.hooks.onFailure(error instanceof Error ? error : new Error(String(error)));
    } finally {
      if (generation === this.generation) this.shipping = false;
    }
  }
}
