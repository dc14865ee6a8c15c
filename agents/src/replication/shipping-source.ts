import { randomUUID } from 'node:crypto';
import type { ShippedEntry } from '@tandem/contract';
import type { StorageEngine } from '../storage/engine.ts';
import type { PeerLinkClient } from './link/peer-link.ts';
import type { PairSource } from './pair-source.ts';
import { localVolumeName } from './copy-set-volumes.ts';

/** One change of a shipped cycle's chunk (the peer protocol's schema). */
export type { ShippedEntry };

/** What one completed cycle did. */
export interface CycleReport {
  cycle: number;
  /** The snapshot instant: the target now holds every copy set's image as of it. */
  time: number;
  tracks: number;
  bytesSent: number;
  durationMs: number;
}

export interface ShippingHooks {
  /** The target committed a cycle: the session's consistency time is its snapshot instant. */
  onCycle(report: CycleReport): void;
  /** A cycle failed (link, target refusal): marks stay set, the session suspends. */
  onFailure(error: Error): void;
}

export const DEFAULT_SHIP_INTERVAL_MS = 30_000;
/** Bytes of track data per `ship.chunk` request, and requests in flight. */
const CHUNK_BYTES = 4 * 1024 * 1024;
const CHUNK_WINDOW = 4;
const SNAPSHOT_PREFIX = 'tandem-ship-';

/** The name of a shipping snapshot of a copy set's volume (recognizable, so leftovers of an earlier run can be removed). */
function snapshotName(pairId: string, epoch: string, cycle: number): string {
  return `${SNAPSHOT_PREFIX}${pairId.slice(0, 8)}-${epoch.slice(0, 8)}-${cycle}`;
}

/**
 * The source side of a snapshot-shipping session: every interval (or on
 * `shipNow`) one cycle for all copy sets together.
 *
 * 1. The cut: host writes of every copy set are held before their local
 *    write (nothing acknowledged waits), the marked tracks of each pair are
 *    taken as the cycle's, and a snapshot of each source volume is created
 *    (pointers only); then writes go on. Host writes from then on mark their
 *    tracks for the next cycle.
 * 2. The cycle's tracks are read from the snapshots (so the shipped image is
 *    the cut's, whatever the host writes meanwhile) and streamed to the
 *    target, which stages them and applies them all-or-nothing on commit.
 * 3. After the commit the cycle's marks are cleared (except tracks written
 *    since the cut), the previous cycle's snapshots are deleted and the
 *    consistency time becomes the cut's instant.
 *
 * The out-of-sync bitmap itself is the generation marker: a bit is cleared
 * only once its track's cut data is committed at the target, so a crash or
 * link loss at any point leaves every possibly differing track marked.
 */
export class SnapshotShipper {
  readonly epoch = randomUUID();
  /** The mirroring run the cycles ship in (every `ship.*` request names it; see stream-fence.ts). */
  private run = '';
  private cycle = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<CycleReport | null> | null = null;
  private stopped = true;
  /** Snapshots of the last committed cycle (the source-side twin of the target image). */
  private kept: string[] = [];
  /** Snapshots of the cycle being shipped. */
  private shipping: string[] = [];
  last: CycleReport | null = null;
  bytesSent = 0;

  constructor(
    private readonly sessionId: string,
    private readonly engine: StorageEngine,
    private readonly link: PeerLinkClient,
    private readonly sources: () => PairSource[],
    private readonly hooks: ShippingHooks,
    private interval: number = DEFAULT_SHIP_INTERVAL_MS,
  ) {}

  /** Time between cycles, ms. */
  get intervalMs(): number {
    return this.interval;
  }

  /** Changes the time between cycles; a running shipper counts the new interval from now. */
  setIntervalMs(intervalMs: number): void {
    this.interval = intervalMs;
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
    this.startTimer();
  }

  private startTimer(): void {
    this.timer = setInterval(() => {
      if (!this.running) void this.shipNow().catch(() => {});
    }, this.interval);
    this.timer.unref();
  }

  get active(): boolean {
    return !this.stopped;
  }

  /** Starts cycling as part of mirroring run `run`: one cycle now (the initial copy or resync), then one every interval. */
  start(run: string): void {
    this.run = run;
    this.stopped = false;
    this.removeLeftovers();
    void this.shipNow().catch(() => {});
    if (!this.timer) this.startTimer();
  }

  /** Stops cycling; a cycle in progress is abandoned at its next step (its marks stay). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => null);
  }

  /** This shipper keeps or ships from the snapshot now (it may not be deleted by anyone else). */
  holds(name: string): boolean {
    return this.kept.includes(name) || this.shipping.includes(name);
  }

  /** Deletes this session's shipping snapshots (at stop, terminate, or becoming the target). */
  async dispose(): Promise<void> {
    await this.stop();
    const kept = this.kept;
    this.kept = [];
    await this.deleteSnapshots(kept);
    this.removeLeftovers();
  }

  /** Runs one cycle now (after the one in progress); resolves with its report, or null when stopped. */
  shipNow(): Promise<CycleReport | null> {
    const previous = this.running ?? Promise.resolve(null);
    const run: Promise<CycleReport | null> = previous
      .catch(() => null)
      .then(() => this.runCycle())
      .finally(() => {
        if (this.running === run) this.running = null;
      });
    this.running = run;
    return run;
  }

  private removeLeftovers(): void {
    const ours = new Set(this.sources().map((source) => source.record.id.slice(0, 8)));
    for (const volume of this.engine.listVolumes()) {
      if (!volume.name.startsWith(SNAPSHOT_PREFIX) || this.kept.includes(volume.name) || volume.name.includes(this.epoch.slice(0, 8))) continue;
      const owner = volume.name.slice(SNAPSHOT_PREFIX.length, SNAPSHOT_PREFIX.length + 8);
      if (ours.has(owner)) void this.engine.deleteVolume(volume.name).catch(() => {});
    }
  }

  private async deleteSnapshots(names: string[]): Promise<void> {
    for (const name of names) await this.engine.deleteVolume(name).catch(() => {});
  }

  private async runCycle(): Promise<CycleReport | null> {
    if (this.stopped) return null;
    const sources = this.sources();
    const cycle = ++this.cycle;
    const started = Date.now();
    // Held from creation to the next cycle's commit (or this one's failure): the guard refuses deleting them meanwhile.
    const snapshots: string[] = [];
    this.shipping = snapshots;
    const plans: Array<{ source: PairSource; tracks: number[]; snapshot: string }> = [];
    let time = 0;
    try {
      // 1. The cut, for every copy set at once.
      const releases = sources.map((source) => source.hold());
      try {
        time = Date.now();
        for (const source of sources) {
          const tracks = source.beginCycle();
          source.progress = { total: tracks.length, copied: 0, recopied: 0, bytesTotal: 0, bytesSent: 0, startedAt: started };
          plans.push({ source, tracks, snapshot: snapshotName(source.record.id, this.epoch, cycle) });
        }
        for (const plan of plans) {
          await this.engine.createSnapshot(localVolumeName(this.engine, plan.source.record), plan.snapshot, { readOnly: true });
          snapshots.push(plan.snapshot);
        }
      } finally {
        for (const release of releases) release();
      }
      // 2. Convey the marked tracks from the snapshots.
      const tracks = plans.reduce((sum, plan) => sum + plan.tracks.length, 0);
      const run = this.run;
      await this.link.call('ship.begin', { session: this.sessionId, run, epoch: this.epoch, cycle, time }, null, { waitForLinkMs: 2000 });
      let bytes = 0;
      const inFlight = new Set<Promise<void>>();
      let failure: unknown = null;
      const send = async (entries: ShippedEntry[], payload: Buffer[]) => {
        const data = payload.length === 1 ? payload[0] : Buffer.concat(payload);
        await this.link.call('ship.chunk', { session: this.sessionId, run, epoch: this.epoch, cycle, entries }, data.length > 0 ? data : null, {
          waitForLinkMs: 2000,
          timeoutMs: 60_000,
        });
        bytes += data.length;
        this.bytesSent += data.length;
      };
      let entries: ShippedEntry[] = [];
      let payload: Buffer[] = [];
      let size = 0;
      const flush = async () => {
        if (entries.length === 0) return;
        const sending = send(entries, payload);
        entries = [];
        payload = [];
        size = 0;
        const tracked: Promise<void> = sending.then(
          () => {},
          (error: unknown) => {
            failure ??= error;
          },
        );
        inFlight.add(tracked);
        void tracked.then(() => inFlight.delete(tracked));
        if (inFlight.size >= CHUNK_WINDOW) await Promise.race(inFlight);
        if (failure) throw failure;
      };
      try {
        for (const plan of plans) {
          const device = this.engine.device(plan.snapshot);
          for (const track of plan.tracks) {
            if (this.stopped) throw new Error('shipping stopped');
            const offset = track * device.trackSize;
            const length = Math.min(device.trackSize, device.sizeBytes - offset);
            const runs = device.allocationMap(offset, length);
            if (runs.length === 1 && !runs[0].allocated) {
              entries.push({ pair: plan.source.record.id, kind: 'trim', offset, length, dataOffset: 0 });
            } else {
              const data = Buffer.allocUnsafe(length);
              await device.readInto(offset, data);
              entries.push({ pair: plan.source.record.id, kind: 'write', offset, length, dataOffset: size });
              payload.push(data);
              size += length;
              plan.source.progress.bytesSent += length;
            }
            plan.source.progress.copied++;
            if (size >= CHUNK_BYTES || entries.length >= 4096) await flush();
          }
        }
        await flush();
      } finally {
        await Promise.allSettled(inFlight);
      }
      if (failure) throw failure;
      if (this.stopped) throw new Error('shipping stopped');
      // 3. All-or-nothing at the target.
      await this.link.call('ship.commit', { session: this.sessionId, run, epoch: this.epoch, cycle, time }, null, {
        waitForLinkMs: 2000,
        timeoutMs: 10 * 60_000,
      });
      for (const plan of plans) plan.source.endCycle(true);
      const previous = this.kept;
      this.kept = snapshots;
      this.shipping = [];
      await this.deleteSnapshots(previous);
      const report: CycleReport = { cycle, time, tracks, bytesSent: bytes, durationMs: Date.now() - started };
      this.last = report;
      this.hooks.onCycle(report);
      return report;
    } catch (error) {
      for (const plan of plans) plan.source.endCycle(false);
      if (this.shipping === snapshots) this.shipping = [];
      await this.deleteSnapshots(snapshots);
      if (!this.stopped) this.hooks.onFailure(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  }
}
