import { randomBytes, randomInt } from 'node:crypto';
import type { BlockDevice } from '../../src/storage/block-device.ts';

export interface WriterResult {
  writes: number;
  /** Milliseconds per acknowledged write. */
  latencies: number[];
  errors: unknown[];
}

export interface Writer {
  /** Writes acknowledged so far. */
  readonly writes: number;
  stop(): Promise<WriterResult>;
}

/**
 * Host writes through a device (the splitter) until stopped: `workers`
 * writes of 512 B..32 KiB at random offsets in flight at a time, never two
 * touching the same track at once (the order of overlapping writes in
 * flight is undefined for a host), and never a track of `exclude`.
 */
export function startWriter(device: BlockDevice, options: { workers?: number; exclude?: Iterable<number> } = {}): Writer {
  const trackSize = device.trackSize;
  const exclude = new Set(options.exclude ?? []);
  const busy = new Set<number>();
  const result: WriterResult = { writes: 0, latencies: [], errors: [] };
  let stopped = false;
  const worker = async () => {
    while (!stopped) {
      const length = 512 * randomInt(1, 65);
      const offset = randomInt(0, (device.sizeBytes - length) / 512 + 1) * 512;
      const first = Math.floor(offset / trackSize);
      const last = Math.floor((offset + length - 1) / trackSize);
      let free = true;
      for (let track = first; track <= last; track++) if (busy.has(track) || exclude.has(track)) free = false;
      if (!free) {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      for (let track = first; track <= last; track++) busy.add(track);
      const started = performance.now();
      try {
        await device.write(offset, randomBytes(length));
        result.writes++;
        result.latencies.push(performance.now() - started);
      } catch (error) {
        result.errors.push(error);
      } finally {
        for (let track = first; track <= last; track++) busy.delete(track);
      }
      // A host's next request arrives by the network, in a later turn of the event loop. A write
      // that needs no I/O of its own (an overwrite into an active region, while suspended) settles
      // with microtasks only: without this turn the writers would starve every timer.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const done = Promise.all(Array.from({ length: options.workers ?? 4 }, worker));
  return {
    get writes() {
      return result.writes;
    },
    async stop() {
      stopped = true;
      await done;
      return result;
    },
  };
}
