import type { StorageEngine } from '../storage/engine.ts';
import type { FlashPairRecord } from './store.ts';
import { nextSharedTrack } from './tracks.ts';

const MiB = 1024 * 1024;
/** Bytes copied per step (one range-lock hold of the target). */
const STEP_BYTES = MiB;
/** Steps in flight at once when the copy is not rate-limited. */
const IN_FLIGHT = 4;
/** Window of the reported throughput. */
const RATE_WINDOW_MS = 2000;

export interface BackgroundCopyOptions {
  engine: StorageEngine;
  pairs: FlashPairRecord[];
  /** Current rate limit in MiB/s (null = as fast as the disks go); read before every step. */
  rateMiBps: () => number | null;
  /** A pair has no shared track left. */
  onPairDone: (pair: FlashPairRecord) => void;
  /** Called about once a second while copying. */
  onProgress: () => void;
  /** Every pair is done (not called when stopped). */
  onDone: () => void;
  onError: (error: Error) => void;
}

/**
 * The background copy of one flash session: walks each pair's target and
 * gives it its own copy of every track it still shares with the source, a
 * step (about 1 MiB) at a time under the target's range lock, paced to the
 * rate limit. Progress lives in the VTTs, so a restart simply walks again.
 */
export class BackgroundCopy {
  private stopped = false;
  private readonly loop: Promise<void>;
  private readonly samples: Array<{ at: number; bytes: number }> = [];

  constructor(private readonly options: BackgroundCopyOptions) {
    this.loop = this.run().catch((error: unknown) => {
      if (!this.stopped) this.options.onError(error instanceof Error ? error : new Error(String(error)));
    });
  }

  /** Stops after the step in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Bytes per second over the last couple of seconds. */
  get bytesPerSecond(): number {
    const now = performance.now();
    while (this.samples.length > 0 && now - this.samples[0].at > RATE_WINDOW_MS) this.samples.shift();
    if (this.samples.length === 0) return 0;
    const bytes = this.samples.reduce((sum, sample) => sum + sample.bytes, 0);
    return Math.round((bytes * 1000) / RATE_WINDOW_MS);
  }

  private async run(): Promise<void> {
    const { engine } = this.options;
    const trackSize = engine.trackSize;
    const step = Math.max(1, Math.floor(STEP_BYTES / trackSize));
    let paceStart = performance.now();
    let pacedBytes = 0;
    let pacedRate: number | null = this.options.rateMiBps();
    let lastProgress = performance.now();
    for (const pair of this.options.pairs) {
      if (pair.state === 'idle-copied') continue;
      let cursor = 0;
      // A few steps in flight on disjoint ranges keep the disk busy (each step reads, then writes).
      const inFlight: Array<Promise<number>> = [];
      const settleOldest = async () => {
        const copied = await inFlight.shift()!;
        const bytes = copied * trackSize;
        const now = performance.now();
        this.samples.push({ at: now, bytes });
        if (now - lastProgress >= 1000) {
          lastProgress = now;
          this.options.onProgress();
        }
        const rate = this.options.rateMiBps();
        if (rate !== pacedRate) {
          pacedRate = rate;
          paceStart = now;
          pacedBytes = 0;
        }
        pacedBytes += bytes;
        if (rate !== null) {
          const due = paceStart + (pacedBytes / (rate * MiB)) * 1000;
          if (due > now) await sleep(due - now);
        }
      };
      try {
        for (;;) {
          if (this.stopped) return;
          const source = engine.volumeMeta(pair.source);
          const target = engine.volumeMeta(pair.target);
          const track = nextSharedTrack(source, target, cursor);
          if (track < 0) break;
          cursor = track + step;
          const running = engine.unshareTracks(pair.target, pair.source, track, track + step);
          running.catch(() => {}); // observed when settled below
          inFlight.push(running);
          // Paced copies run one step at a time; unpaced ones keep a few in flight.
          if (inFlight.length >= (this.options.rateMiBps() === null ? IN_FLIGHT : 1)) await settleOldest();
        }
        while (inFlight.length > 0) await settleOldest();
      } finally {
        await Promise.allSettled(inFlight);
      }
      if (this.stopped) return;
      this.options.onPairDone(pair);
    }
    if (!this.stopped) this.options.onDone();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
