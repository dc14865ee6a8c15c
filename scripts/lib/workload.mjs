// The demo's gentle workload: real host writes through NBD so exposure,
// charts and track maps move. Every `burstEveryMs` each target gets a burst
// of 64 KiB writes: a database-like target at random tracks of a hot region,
// a log-like target appending round a ring; then a FLUSH. About
// `burstKiB / burstEveryMs` per target (a few hundred KiB/s in all), bounded
// regions so the pool does not grow past them however long the demo runs.
// A target whose agent is away (restarted, killed for a failure demo) is
// dialled again on the next burst; `stop()` ends it all cleanly.
import { randomBytes } from 'node:crypto';
import { NbdWriter } from './nbd-writer.mjs';

const WRITE_BYTES = 64 * 1024;

/**
 * @param {{ nbdAddress: string, targets: { volume: string, kind: 'random' | 'append', regionBytes: number }[],
 *   burstEveryMs?: number, burstKiB?: number, log?: (message: string) => void }} options
 */
export function startWorkload({ nbdAddress, targets, burstEveryMs = 2000, burstKiB = 512, log = () => {} }) {
  const writesPerBurst = Math.max(1, Math.round((burstKiB * 1024) / WRITE_BYTES));
  const state = targets.map((target) => ({ ...target, writer: null, next: 0, failing: false }));
  const stats = { bursts: 0, writes: 0, bytes: 0, errors: 0 };
  let stopped = false;
  let timer = null;
  let running = Promise.resolve();

  async function burst(target) {
    if (!target.writer) {
      target.writer = await NbdWriter.connect(nbdAddress, target.volume);
      if (target.failing) log(`workload: writing to ${target.volume} again`);
      target.failing = false;
    }
    const slots = Math.max(1, Math.floor(Math.min(target.regionBytes, target.writer.sizeBytes) / WRITE_BYTES));
    for (let index = 0; index < writesPerBurst && !stopped; index++) {
      const slot = target.kind === 'append' ? target.next++ % slots : Math.floor(Math.random() * slots);
      await target.writer.write(slot * WRITE_BYTES, randomBytes(WRITE_BYTES));
      stats.writes++;
      stats.bytes += WRITE_BYTES;
    }
    await target.writer.flush();
  }

  async function tick() {
    await Promise.all(
      state.map(async (target) => {
        try {
          await burst(target);
        } catch (error) {
          stats.errors++;
          if (!target.failing) log(`workload: ${target.volume}: ${error instanceof Error ? error.message : String(error)}; trying again`);
          target.failing = true;
          const writer = target.writer;
          target.writer = null;
          await writer?.close().catch(() => {});
        }
      }),
    );
    stats.bursts++;
    if (!stopped) timer = setTimeout(() => (running = tick()), burstEveryMs);
  }

  running = tick();
  return {
    stats,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await Promise.all(state.map((target) => target.writer?.close().catch(() => {})));
    },
  };
}
