import { CdpJournal } from '../../src/cdp/journal.ts';
import { StorageEngine } from '../../src/storage/engine.ts';
import { pattern } from '../../src/storage/reference-model.ts';

/**
 * The process test/cdp-crash.test.ts kills with SIGKILL: appends replicated
 * writes to journal 1 of the data dir (up to 8 in flight), marks a point
 * every 10 writes (a bookmark every 50), distributes every 7 and releases old
 * points every 40, racing each other. Prints `ack SEQ` once a write is
 * durable, `point SEQ WRITES` once a point is, and `releasing FLOOR` before
 * it asks for a release.
 */

export const CRASH_TRACK = 4096;
export const CRASH_VOLUME_BYTES = 1024 * CRASH_TRACK;

/** Write `index` (from 1) of the plan: where and what. */
export function crashWrite(index: number): { offset: number; data: Buffer } {
  const length = 1 + ((index * 7919) % (3 * CRASH_TRACK));
  const offset = (index * 104_729) % (CRASH_VOLUME_BYTES - length);
  return { offset, data: pattern(index, length, 77) };
}

async function main(dataDir: string): Promise<void> {
  const engine = await StorageEngine.open(dataDir);
  const journal = CdpJournal.open(engine, 1);
  const volume = engine.volumeId('replica');
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const inflight = new Set<Promise<unknown>>();
  const track = (promise: Promise<unknown>) => {
    inflight.add(promise);
    void promise.finally(() => inflight.delete(promise));
  };
  out('ready');
  for (let index = 1; ; index++) {
    const { offset, data } = crashWrite(index);
    track(journal.write(volume, offset, data).then((seq) => out(`ack ${seq}`)));
    if (index % 10 === 0) {
      const writes = index;
      track(journal.markPoint({ name: index % 50 === 0 ? `b${index}` : undefined }).then((point) => out(`point ${point.seq} ${writes}`)));
    }
    if (index % 7 === 0) track(journal.distribute({ maxEntries: 9 }));
    if (index % 40 === 0) {
      const points = journal.points();
      if (points.length > 8) {
        const floor = points[points.length - 8].seq;
        out(`releasing ${floor}`);
        track(journal.release(floor));
      }
    }
    if (inflight.size >= 8) await Promise.race(inflight);
  }
}

if (process.argv[2]) await main(process.argv[2]);
