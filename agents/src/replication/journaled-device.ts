import { ProblemError } from '@tandem/contract';
import type { CdpJournal } from '../cdp/journal.ts';
import type { AllocationRun, BlockDevice, IoOptions } from '../storage/block-device.ts';
import type { HostChange, TrackSpan, WriteTap } from '../write-path/splitter.ts';

/** A replica volume with a journal takes no host writes. */
export class JournalGuardTap implements WriteTap {
  readonly order = 5;
  constructor(
    private readonly volume: string,
    private readonly session: string,
  ) {}

  admit(_change: HostChange, _span: TrackSpan): void {
    throw new ProblemError(
      'read-only',
      `${this.volume} is a replica of session ${this.session} with a journal; open an image (tandem-agent image access ${this.session}) to write to a point in time`,
    );
  }

  beforeWrite(): void {}
}

/**
 * A replica volume as replicated writes see it while its session has a
 * journal: writes and trims are journal appends (durable when they
 * resolve), distribution follows; reads see the replica once what was
 * appended is distributed.
 */
export class JournaledDevice implements BlockDevice {
  constructor(
    private readonly replica: BlockDevice,
    private readonly journal: CdpJournal,
    private readonly volumeId: number,
    private readonly distributed: () => void,
  ) {}

  get name(): string {
    return this.replica.name;
  }
  get sizeBytes(): number {
    return this.replica.sizeBytes;
  }
  get trackSize(): number {
    return this.replica.trackSize;
  }
  get readOnly(): boolean {
    return this.replica.readOnly;
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    if (this.journal.meta.pending.length > 0) await this.journal.distribute();
    await this.replica.readInto(offset, target);
  }

  /** Durable when it resolves with FUA, else with the next flush (as the volume's own write): in order either way. */
  async write(offset: number, data: Buffer, options?: IoOptions): Promise<void> {
    await this.journal.write(this.volumeId, offset, data, Date.now(), { durable: options?.fua === true });
    this.distributed();
  }

  async trim(offset: number, length: number, options?: IoOptions): Promise<void> {
    await this.journal.trim(this.volumeId, offset, length, Date.now(), { durable: options?.fua === true });
    this.distributed();
  }

  /** A trim reads as zeroes: journaled as one (a record, not zeroes). */
  async writeZeroes(offset: number, length: number, options?: IoOptions): Promise<void> {
    await this.trim(offset, length, options);
  }

  flush(): Promise<void> {
    return this.journal.flush();
  }

  allocationMap(offset: number, length: number): AllocationRun[] {
    return this.replica.allocationMap(offset, length);
  }

  retain(): void {}
  release(): void {}
}
