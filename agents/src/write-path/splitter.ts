import { ProblemError } from '@tandem/contract';
import type { AllocationRun, BlockDevice, ExportCatalog, IoOptions, WriteZeroesOptions } from '../storage/block-device.ts';

/** One kind of host I/O that changes a volume. */
export type HostChange =
  | { kind: 'write'; offset: number; data: Buffer; options?: IoOptions }
  | { kind: 'trim'; offset: number; length: number; options?: IoOptions }
  | { kind: 'zeroes'; offset: number; length: number; options?: WriteZeroesOptions };

/** What a change touches, in tracks [first, end). */
export interface TrackSpan {
  first: number;
  end: number;
}

/** What a tap does for one host change. */
export interface TapWork {
  /** Must settle before the local write starts (a durable out-of-sync mark, a flash copy's copy-on-write). */
  beforeLocal?: Promise<void>;
  /** Must settle before the host is acknowledged (a sync mirror's remote acknowledgement). */
  acknowledged?: Promise<void>;
}

/**
 * A participant of the write path. The splitter runs every host change
 * through these in DESIGN.md's order:
 *   1. check the volume's state (`admit`), then the change gets its sequence number;
 *   2. flash copy copy-on-write (taps of order 10);
 *   3. mirroring (order 20: sync and semi-sync send, async queues, a
 *      suspended pair marks out-of-sync; marks are durable before step 4);
 *   4. the local write;
 *   5. segment codes of the touched tracks are invalidated (by the device
 *      itself, so no write path can forget it);
 *   6. the host is acknowledged once every tap's `acknowledged` settled.
 */
export interface WriteTap {
  /** Lower runs first: flash copy (10) before mirroring (20). */
  readonly order: number;
  /** Throws a ProblemError to refuse the host change (e.g. a write-inhibited target). */
  admit?(change: HostChange, span: TrackSpan): void;
  beforeWrite(change: HostChange, span: TrackSpan, sequence: number): TapWork | void;
  /**
   * The fast path (Splitter.writeNow): whether this tap can do its part of
   * the write at once, in `beforeWriteNow`, with nothing to wait for before
   * the local write or the acknowledgement. Changes nothing.
   */
  canWriteNow?(change: HostChange, span: TrackSpan): boolean;
  /** beforeWrite of a change canWriteNow took, done now. */
  beforeWriteNow?(change: HostChange, span: TrackSpan, sequence: number): void;
  /** The host asked for a flush: make this tap's part durable too. */
  flush?(): Promise<void>;
  /**
   * The change is over: the local write and every tap's part settled (or it
   * failed). Called once for every `beforeWrite` that ran.
   */
  afterWrite?(change: HostChange, span: TrackSpan): void;
}

/** Where the splitter finds the taps of a volume (the replication service, later flash copy). */
export interface TapSource {
  tapsFor(volume: string): WriteTap[];
}

const NO_TAPS: WriteTap[] = [];

/**
 * The one place every host write passes. Wraps the engine's device for a
 * volume, asks the tap sources which taps apply right now, and runs them in
 * order around the local write.
 */
export class Splitter implements BlockDevice {
  private static sequence = 0;
  /** Host writes with taps done in writeNow (the fast path), for tests and profiles. */
  tappedWritesNow = 0;

  constructor(
    private readonly device: BlockDevice,
    private readonly sources: TapSource[],
  ) {}

  get name(): string {
    return this.device.name;
  }
  get sizeBytes(): number {
    return this.device.sizeBytes;
  }
  get trackSize(): number {
    return this.device.trackSize;
  }
  get readOnly(): boolean {
    return this.device.readOnly;
  }

  readInto(offset: number, target: Buffer): Promise<void> {
    return this.device.readInto(offset, target);
  }

  readIntoNow(offset: number, target: Buffer): boolean {
    return this.device.readIntoNow?.(offset, target) ?? false;
  }

  /**
   * The device's fast path (BlockDevice.writeNow). With taps, only when the
   * device can take the write now and every tap can do its part at once
   * (an async copy set queues it in its open consistency group): the same
   * steps as `split`, without yielding.
   */
  writeNow(offset: number, data: Buffer): boolean {
    const device = this.device;
    if (device.writeNow === undefined) return false;
    const taps = this.taps();
    if (taps.length === 0) return device.writeNow(offset, data);
    if (device.canWriteNow?.(offset, data.length) !== true) return false;
    const change: HostChange = { kind: 'write', offset, data };
    const span = this.span(offset, data.length);
    for (const tap of taps) {
      if (tap.beforeWriteNow === undefined || tap.canWriteNow?.(change, span) !== true) return false;
      try {
        tap.admit?.(change, span);
      } catch {
        return false; // refused: `write` reports it
      }
    }
    const sequence = ++Splitter.sequence;
    for (const tap of taps) tap.beforeWriteNow!(change, span, sequence);
    // Fails only on an I/O error: the caller then writes through `write`, and the taps take the change again (the
    // same bytes, right after: nothing came between).
    const done = device.writeNow(offset, data);
    for (const tap of taps) tap.afterWrite?.(change, span);
    if (done) this.tappedWritesNow++;
    return done;
  }

  allocationMap(offset: number, length: number): AllocationRun[] {
    return this.device.allocationMap(offset, length);
  }

  retain(): void {
    this.device.retain();
  }

  release(): void {
    this.device.release();
  }

  /** The taps of this volume in order. Per host write: no new array unless two sources have taps. */
  private taps(): WriteTap[] {
    const name = this.device.name;
    let found: WriteTap[] = NO_TAPS;
    let merged = false;
    for (const source of this.sources) {
      const taps = source.tapsFor(name);
      if (taps.length === 0) continue;
      if (found.length === 0) found = taps;
      else {
        found = [...found, ...taps];
        merged = true;
      }
    }
    return merged ? found.sort((a, b) => a.order - b.order) : found;
  }

  private span(offset: number, length: number): TrackSpan {
    const trackSize = this.device.trackSize;
    return { first: Math.floor(offset / trackSize), end: Math.floor((offset + Math.max(length, 1) - 1) / trackSize) + 1 };
  }

  private async split(change: HostChange, length: number, local: () => Promise<void>): Promise<void> {
    const taps = this.taps();
    if (taps.length === 0) return local();
    // 1. state and range checks, then the sequence number.
    if (change.offset < 0 || change.offset + length > this.device.sizeBytes) {
      throw new ProblemError('out-of-range', `${length} bytes at ${change.offset} reach past the end of ${this.name}`);
    }
    const span = this.span(change.offset, length);
    for (const tap of taps) tap.admit?.(change, span);
    const sequence = ++Splitter.sequence;
    // 2.-3. taps in order; what must precede the local write is awaited here.
    let acknowledgements: Array<Promise<void>> | null = null;
    let started = 0; // taps[0, started) ran beforeWrite (allocation-free: this runs for every host write)
    try {
      for (const tap of taps) {
        started++;
        const work = tap.beforeWrite(change, span, sequence);
        if (!work) continue;
        if (work.acknowledged) {
          work.acknowledged.catch(() => {}); // observed below; an early failure must not go unhandled
          (acknowledgements ??= []).push(work.acknowledged);
        }
        if (work.beforeLocal) await work.beforeLocal;
      }
      // 4. the local write (5. the device clears the touched tracks' segment codes).
      if (acknowledgements === null) {
        // (No tap waits for anything after the local write: async and suspended pairs, flash copy.)
        await local();
      } else {
        const results = await Promise.allSettled([local(), ...acknowledgements]);
        // 6. acknowledge only when every part is done.
        for (const result of results) if (result.status === 'rejected') throw result.reason;
      }
    } finally {
      if (acknowledgements !== null && taps.some((tap, index) => index < started && tap.afterWrite)) await Promise.allSettled(acknowledgements);
      for (let index = 0; index < started; index++) taps[index].afterWrite?.(change, span);
    }
  }

  write(offset: number, data: Buffer, options?: IoOptions): Promise<void> {
    return this.split({ kind: 'write', offset, data, options }, data.length, () => this.device.write(offset, data, options));
  }

  trim(offset: number, length: number, options?: IoOptions): Promise<void> {
    return this.split({ kind: 'trim', offset, length, options }, length, () => this.device.trim(offset, length, options));
  }

  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.split({ kind: 'zeroes', offset, length, options }, length, () =>
      this.device.writeZeroes(offset, length, options),
    );
  }

  async flush(): Promise<void> {
    const taps = this.taps();
    await Promise.all([this.device.flush(), ...taps.map((tap) => tap.flush?.())]);
  }
}

/** The NBD listener's view: every export is the volume behind a splitter. */
export function splitterExports(engineExports: ExportCatalog, sources: TapSource[]): ExportCatalog {
  const splitters = new Map<BlockDevice, Splitter>();
  return {
    listExports: () => engineExports.listExports(),
    openExport: (name: string) => {
      const device = engineExports.openExport(name);
      let splitter = splitters.get(device);
      if (!splitter) {
        splitter = new Splitter(device, sources);
        splitters.set(device, splitter);
      }
      return splitter;
    },
  };
}
