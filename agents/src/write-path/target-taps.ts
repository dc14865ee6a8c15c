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
 * tracks in the target-changed bitmap so failback knows what production
 * changed here. As with the out-of-sync bitmap at a source (pair-source.ts),
 * the bits are set in memory and durable with the next metadata commit; the
 * local write waits only until their region is durably in the activity log
 * (storage/activity-log.ts; no I/O when it already is). After a crash every
 * track of the logged regions is set when the engine opens, before failback
 * reads the bitmap, so it marks more tracks than were written, never fewer.
 */
export class TargetChangedTap implements WriteTap {
  readonly order = 20;

  constructor(
    private readonly engine: StorageEngine,
    private readonly bitmap: number,
  ) {}

  beforeWrite(_change: HostChange, span: TrackSpan): TapWork {
    // Durable enough before the local write: the region is in the activity log.
    return { beforeLocal: this.engine.bitmaps.cover(this.bitmap, span.first, span.end - span.first) };
  }
}
