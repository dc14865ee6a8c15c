import { ProblemError } from '@tandem/contract';
import type { StorageEngine } from '../storage/engine.ts';
import type { HostChange, TapWork, TrackSpan, WriteTap } from './splitter.ts';

/** A mirror target that hosts must not write: the pair's source owns its content. */
export class WriteInhibitTap implements WriteTap {
  readonly order = 20;

  constructor(
    private readonly volume: string,
    private readonly session: string,
  ) {}

  admit(_change: HostChange, _span: TrackSpan): void {
    throw new ProblemError(
      'read-only',
      `${this.volume} is the target of session ${this.session}; recover the session to write here`,
    );
  }

  beforeWrite(): void {}
}

/**
 * A target made writable by Recover (failover): every host write marks its
 * tracks in the target-changed bitmap, durably before the local write, so
 * failback knows what production changed here.
 */
export class TargetChangedTap implements WriteTap {
  readonly order = 20;

  constructor(
    private readonly engine: StorageEngine,
    private readonly bitmap: number,
  ) {}

  beforeWrite(_change: HostChange, span: TrackSpan): TapWork {
    return { beforeLocal: this.engine.bitmaps.set(this.bitmap, span.first, span.end - span.first) };
  }
}
