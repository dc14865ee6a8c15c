import { ProblemError } from '@tandem/contract';
import type { HostChange, TrackSpan, WriteTap } from '../write-path/splitter.ts';

/** A write-inhibited flash target: hosts may read it, not write it, while the relationship exists. */
export class FlashWriteInhibitTap implements WriteTap {
  readonly order = 10;

  constructor(
    private readonly volume: string,
    private readonly session: string,
  ) {}

  admit(_change: HostChange, _span: TrackSpan): void {
    throw new ProblemError('read-only', `${this.volume} is a write-inhibited target of flash session ${this.session}`);
  }

  beforeWrite(): void {}
}
