import { randomUUID } from 'node:crypto';
import type { PeerLinkClient } from './link/peer-link.ts';
import type { PairRecord } from './session-store.ts';
import type { HostChange, TrackSpan } from './splitter.ts';

/** One change inside a consistency group, as shipped. */
export interface GroupEntry {
  pair: string;
  kind: 'write' | 'trim' | 'zeroes';
  offset: number;
  length: number;
  /** Where the entry's data starts in the group's payload (writes only). */
  dataOffset: number;
}

export interface SealedGroup {
  number: number;
  /** The cut: every write acknowledged to a host before this instant is in this group or an earlier one. */
  time: number;
  entries: GroupEntry[];
  payload: Buffer[];
  bytes: number;
  /** Pair id -> tracks this group changes. */
  tracks: Map<string, Set<number>>;
}

export interface ShipperHooks {
  /** The target applied a group: clear out-of-sync bits of tracks nothing newer touches. */
  onApplied(group: SealedGroup): void;
  /** Shipping failed or the backlog grew too large: the session falls back to bitmaps. */
  onFailure(error: Error): void;
}

const DEFAULT_INTERVAL_MS = 100;
const DEFAULT_MAX_BACKLOG_BYTES = 256 * 1024 * 1024;

/**
 * The consistency-group master of an async session (at its source site).
 * Host writes of every copy set of the session go into the open group
 * (copied: NBD reuses its buffers) before the host is acknowledged; every
 * interval the open group is sealed in one synchronous step, which is the
 * cut: a write that depends on another (issued after the other's
 * acknowledgement) can never be in an earlier group than it. Sealed groups
 * ship in order; the target stages each durably and applies it
 * all-or-nothing, so its image is always the source's at the last applied
 * group's time (the session's consistency time).
 */
export class ConsistencyGroupShipper {
  readonly epoch = randomUUID();
  private open: SealedGroup;
  private readonly sealed: SealedGroup[] = [];
  private nextNumber = 1;
  private timer: NodeJS.Timeout | null = null;
  private shipping = false;
  private stopped = false;
  /** `${pair}:${track}` -> the newest group holding a change of that track. */
  private readonly newest = new Map<string, number>();
  lastApplied: { number: number; time: number } | null = null;
  private backlog = 0;

  constructor(
    private readonly sessionId: string,
    private readonly link: PeerLinkClient,
    private readonly hooks: ShipperHooks,
    private readonly options: { intervalMs?: number; maxBacklogBytes?: number } = {},
  ) {
    this.open = this.newGroup();
  }

  private newGroup(): SealedGroup {
    return { number: this.nextNumber++, time: 0, entries: [], payload: [], bytes: 0, tracks: new Map() };
  }

  start(): void {
    this.stopped = false;
    if (this.timer) return;
    this.timer = setInterval(() => this.seal(), this.options.intervalMs ?? DEFAULT_INTERVAL_MS);
    this.timer.unref();
  }

  /** Stops shipping and drops what is queued (the out-of-sync bits still cover it). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sealed.length = 0;
    this.open = this.newGroup();
    this.newest.clear();
    this.backlog = 0;
  }

  get backlogBytes(): number {
    return this.backlog;
  }

  /** True while a queued group still holds a change of this track (a resync need not copy it). */
  isPending(pair: string, track: number): boolean {
    return this.newest.has(`${pair}:${track}`);
  }

  /** Adds a host change to the open group. Call before the host is acknowledged. */
  enqueue(pair: PairRecord, change: HostChange, span: TrackSpan): void {
    if (this.stopped) return;
    const group = this.open;
    const length = change.kind === 'write' ? change.data.length : change.length;
    const entry: GroupEntry = { pair: pair.id, kind: change.kind, offset: change.offset, length, dataOffset: group.bytes };
    if (change.kind === 'write') {
      group.payload.push(Buffer.from(change.data));
      group.bytes += change.data.length;
      this.backlog += change.data.length;
    }
    group.entries.push(entry);
    let tracks = group.tracks.get(pair.id);
    if (!tracks) {
      tracks = new Set();
      group.tracks.set(pair.id, tracks);
    }
    for (let track = span.first; track < span.end; track++) {
      tracks.add(track);
      this.newest.set(`${pair.id}:${track}`, group.number);
    }
    if (this.backlog > (this.options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES)) {
      this.hooks.onFailure(new Error(`the async backlog passed ${this.options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES} bytes`));
    }
  }

  /** Seals the open group (the cut) and ships what is sealed. */
  seal(): void {
    if (this.stopped) return;
    const group = this.open;
    group.time = Date.now();
    if (group.entries.length > 0) {
      this.sealed.push(group);
      this.open = this.newGroup();
    } else if (this.sealed.length === 0 && !this.shipping) {
      // Nothing changed: the target is current as of now.
      this.lastApplied = { number: this.lastApplied?.number ?? 0, time: group.time };
    }
    void this.ship();
  }

  private async ship(): Promise<void> {
    if (this.shipping) return;
    this.shipping = true;
    try {
      while (!this.stopped && this.sealed.length > 0) {
        const group = this.sealed[0];
        await this.link.call(
          'cg.apply',
          { session: this.sessionId, epoch: this.epoch, group: group.number, time: group.time, entries: group.entries },
          group.payload.length === 1 ? group.payload[0] : Buffer.concat(group.payload, group.bytes),
          { waitForLinkMs: 2000, timeoutMs: 60_000 },
        );
        if (this.stopped) return;
        this.sealed.shift();
        this.backlog -= group.bytes;
        for (const [pair, tracks] of group.tracks) {
          for (const track of tracks) {
            const key = `${pair}:${track}`;
            if (this.newest.get(key) === group.number) this.newest.delete(key);
            else tracks.delete(track); // a newer group changes it again: its bit stays set
          }
        }
        this.lastApplied = { number: group.number, time: group.time };
        this.hooks.onApplied(group);
      }
    } catch (error) {
      if (!this.stopped) this.hooks.onFailure(error instanceof Error ? error : new Error(String(error)));
    } finally {
      this.shipping = false;
    }
  }
}
