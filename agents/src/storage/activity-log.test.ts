import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ActivityLog, ACTIVITY_LOG_FILE, activityLogOptions, SLOT_BYTES } from './activity-log.ts';
import { checkDataDir } from './check.ts';
import { StorageEngine } from './engine.ts';
import { initDataDir } from './init.ts';

/**
 * The activity log against a model of what might differ between the sites:
 * random host writes (covered, then written), tracks found in sync (bits
 * cleared lazily, as the sweeper and applied consistency groups do),
 * flushes, idle sweeps, clean restarts and crashes at random points
 * (including with activations in flight and a torn newest slot). After every
 * restart the bitmap must hold every track written since it was last known
 * in sync, and nothing beyond the tracks ever marked plus the regions that
 * were in the log.
 */

const TRACK = 4096;
const REGION_TRACKS = 4;
const MAX_REGIONS = 3;
const VOLUME_TRACKS = 64; // 16 regions: eviction is frequent

// The engine opens its activity log with these (read at each open).
const savedEnv = { ...process.env };
process.env.TANDEM_ACTIVITY_REGION_BYTES = String(REGION_TRACKS * TRACK);
process.env.TANDEM_ACTIVITY_MAX_REGIONS = String(MAX_REGIONS);
process.env.TANDEM_ACTIVITY_IDLE_MS = '0';

const roots: string[] = [];
afterAll(async () => {
  for (const name of ['TANDEM_ACTIVITY_REGION_BYTES', 'TANDEM_ACTIVITY_MAX_REGIONS', 'TANDEM_ACTIVITY_IDLE_MS']) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
});

async function freshDataDir(): Promise<string> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-activity-'));
  roots.push(root);
  await initDataDir(root, { site: 'activity', trackSize: TRACK });
  return root;
}

type Op =
  | { kind: 'write'; track: number; count: number }
  | { kind: 'concurrent'; tracks: number[] }
  | { kind: 'in-sync'; track: number }
  | { kind: 'flush' }
  | { kind: 'idle' }
  | { kind: 'restart' }
  | { kind: 'crash'; inFlight: number[]; tear: boolean; keepWalBytes: number };

const trackArb = fc.nat(VOLUME_TRACKS - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('write' as const), track: trackArb, count: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('concurrent' as const), tracks: fc.array(trackArb, { minLength: 2, maxLength: 6 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('in-sync' as const), track: trackArb }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'idle' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      inFlight: fc.array(trackArb, { maxLength: 3 }),
      tear: fc.boolean(),
      keepWalBytes: fc.oneof(fc.constant(0), fc.nat(200)),
    }),
  },
);

const regionOf = (track: number) => Math.floor(track / REGION_TRACKS);

async function run(ops: Op[]): Promise<void> {
  const root = await freshDataDir();
  let engine = await StorageEngine.open(root);
  await engine.createVolume('v', VOLUME_TRACKS * TRACK);
  const bitmap = await engine.bitmaps.create(engine.volumeId('v'), 'clear');
  /** Tracks written since they were last known in sync: the bitmap must cover them across any crash. */
  const mightDiffer = new Set<number>();
  /** Tracks whose bit was ever set (since the last restart, plus what it restored). */
  let everMarked = new Set<number>();
  const activity = () => engine.bitmaps.activity!;

  /** A host write: cover, then the local write once covered (as the splitter does). */
  const write = async (track: number, count: number) => {
    const end = Math.min(VOLUME_TRACKS, track + count);
    for (let t = track; t < end; t++) everMarked.add(t);
    await engine.bitmaps.cover(bitmap, track, end - track);
    await engine.device('v').write(track * TRACK, Buffer.alloc((end - track) * TRACK, track + 1));
    for (let t = track; t < end; t++) mightDiffer.add(t);
  };

  const reopenAndCheck = async (activeBefore: Set<number>, crashed: boolean) => {
    expect((await checkDataDir(root)).problems).toEqual([]);
    engine = await StorageEngine.open(root);
    const view = engine.bitmaps.view(bitmap);
    for (const track of mightDiffer) expect(view.isSet(track), `track ${track} written, not known in sync, is marked`).toBe(true);
    const marked = new Set<number>();
    for (let t = view.nextSet(0); t >= 0; t = view.nextSet(t + 1)) marked.add(t);
    for (const track of marked) {
      const explained = everMarked.has(track) || (crashed && activeBefore.has(regionOf(track)));
      expect(explained, `track ${track} marked only if it ever was, or its region was in the log`).toBe(true);
    }
    if (!crashed) expect(engine.bitmaps.activityRecovery.regions, 'a clean close empties the log').toBe(0);
    expect(activity().activeRegions).toBe(0);
    // What the bitmap holds now is what a resync would copy.
    for (const track of marked) mightDiffer.add(track);
    everMarked = marked;
  };

  try {
    for (const op of ops) {
      switch (op.kind) {
        case 'write':
          await write(op.track, op.count);
          await activity().settled();
          expect(activity().activeRegions, 'the log stays within its limit').toBeLessThanOrEqual(MAX_REGIONS);
          break;
        case 'concurrent':
          // More new regions at once than the limit: activated together, the excess evicted after.
          await Promise.all(op.tracks.map((track) => write(track, 1)));
          await activity().settled();
          expect(activity().activeRegions, 'the log is back within its limit').toBeLessThanOrEqual(MAX_REGIONS);
          break;
        case 'in-sync':
          // The sweeper or an applied consistency group: the track is in sync, its bit goes lazily.
          mightDiffer.delete(op.track);
          engine.bitmaps.clear(bitmap, op.track, 1);
          break;
        case 'flush':
          await engine.flush();
          break;
        case 'idle':
          await activity().idleSweep();
          await activity().idleSweep();
          break;
        case 'restart':
          await engine.close();
          await reopenAndCheck(new Set(), false);
          break;
        case 'crash': {
          // Activations in flight at the crash: their writers never got to write.
          const pending = op.inFlight.map((track) => {
            everMarked.add(track);
            return engine.bitmaps.cover(bitmap, track, 1).catch(() => {});
          });
          const activeBefore = new Set(activity().regionsOf(bitmap));
          const sequenceBefore = (await ActivityLog.read(path.join(root, 'meta'))).sequence;
          await engine.abandonForCrashTest(op.keepWalBytes);
          await Promise.all(pending);
          const file = path.join(root, 'meta', ACTIVITY_LOG_FILE);
          const after = await ActivityLog.read(path.join(root, 'meta'));
          if (op.tear && after.sequence > sequenceBefore) {
            // The newest slot was written for the writers in flight only: tear it.
            const handle = await fs.open(file, 'r+');
            await handle.write(Buffer.alloc(16, 0xee), 0, 16, (after.sequence % 2) * SLOT_BYTES + 20);
            await handle.close();
          }
          await reopenAndCheck(activeBefore, true);
          break;
        }
      }
    }
    // Nothing lost at a last crash either.
    const activeBefore = new Set(activity().regionsOf(bitmap));
    await engine.abandonForCrashTest();
    await reopenAndCheck(activeBefore, true);
  } finally {
    await engine.close().catch(() => {});
  }
}

describe('activity log of the out-of-sync bitmaps', () => {
  it('covers every track written since it was last in sync, across random crashes and restarts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 40 }), (ops) => run(ops)),
      { numRuns: 40 },
    );
  });

  it('costs no I/O for a region already in the log and one slot write for a new one, shared by concurrent writers', async () => {
    const root = await freshDataDir();
    const engine = await StorageEngine.open(root);
    try {
      await engine.createVolume('v', VOLUME_TRACKS * TRACK);
      const bitmap = await engine.bitmaps.create(engine.volumeId('v'), 'clear');
      const log = engine.bitmaps.activity!;
      const start = log.transactions;
      // Four writers into two new regions at once: one slot write.
      await Promise.all([0, 1, 4, 5].map((track) => engine.bitmaps.cover(bitmap, track, 1)));
      expect(log.transactions - start).toBe(1);
      expect(log.regionsOf(bitmap)).toEqual([0, 1]);
      // Writes into active regions: no slot write, no metadata commit waited for.
      const pendingBefore = engine.pendingMetadataBytes;
      for (const track of [2, 3, 6, 7, 0]) await engine.bitmaps.cover(bitmap, track, 1);
      expect(log.transactions - start).toBe(1);
      expect(engine.pendingMetadataBytes, 'the bits wait for the next commit').toBeGreaterThan(pendingBefore);
      // A third and a fourth region: the least recently used (region 0 was touched last, so region 1) leaves.
      await engine.bitmaps.cover(bitmap, 8, 1);
      await engine.bitmaps.cover(bitmap, 12, 1);
      expect(log.regionsOf(bitmap)).toEqual([0, 2, 3]);
      const contents = await ActivityLog.read(path.join(root, 'meta'));
      expect(contents.regions.map((r) => r.region).sort()).toEqual([0, 2, 3]);
      expect(contents.regionTracks).toBe(REGION_TRACKS);
      // The evicted region's bits were committed before it left: a crash keeps them.
      await engine.abandonForCrashTest();
      const reopened = await StorageEngine.open(root);
      const view = reopened.bitmaps.view(bitmap);
      for (const track of [4, 5, 6, 7]) expect(view.isSet(track)).toBe(true);
      // Regions 0, 2, 3 were in the log: all their tracks count as out-of-sync.
      for (const track of [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15]) expect(view.isSet(track)).toBe(true);
      expect(view.setCount).toBe(16);
      expect(reopened.bitmaps.activityRecovery).toEqual({ regions: 3, markedTracks: 6 });
      await reopened.close();
    } finally {
      await engine.close().catch(() => {});
    }
  });

  it('idle regions leave the log once their bits are committed', async () => {
    const root = await freshDataDir();
    const engine = await StorageEngine.open(root);
    try {
      await engine.createVolume('v', VOLUME_TRACKS * TRACK);
      const bitmap = await engine.bitmaps.create(engine.volumeId('v'), 'clear');
      const log = engine.bitmaps.activity!;
      await engine.bitmaps.cover(bitmap, 0, 1);
      await engine.bitmaps.cover(bitmap, 20, 1);
      await log.idleSweep();
      await engine.bitmaps.cover(bitmap, 20, 1); // still busy
      await log.idleSweep();
      expect(log.regionsOf(bitmap)).toEqual([5]);
      expect((await ActivityLog.read(path.join(root, 'meta'))).regions).toEqual([{ bitmap, region: 5 }]);
      await engine.abandonForCrashTest();
      const reopened = await StorageEngine.open(root);
      expect(reopened.bitmaps.view(bitmap).isSet(0)).toBe(true); // committed before region 0 left
      expect(reopened.bitmaps.view(bitmap).setCount).toBe(1 + REGION_TRACKS);
      await reopened.close();
    } finally {
      await engine.close().catch(() => {});
    }
  });

  describe('close and abandon wait for every transaction running or queued', () => {
    /**
     * The log on its own, with a metadata commit the test holds: transaction 1
     * writes its slot while transaction 2 is queued; transaction 2 evicts a
     * region, so it starts with a commit (held until the test lets it go).
     */
    async function queuedBehindRunning(persist: () => Promise<void>) {
      const meta = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-activity-close-'));
      roots.push(meta);
      const log = await ActivityLog.open(meta, await ActivityLog.read(meta), { regionTracks: 1, maxRegions: 3, idleMs: 0 }, persist);
      await log.cover(0, 0, 2); // regions 0 and 1 durable
      const first = log.cover(0, 2, 3)!; // transaction 1 starts
      await null; // it has taken its snapshot: a new activation queues behind it
      const second = log.cover(0, 3, 4)!; // 4 regions > 3: transaction 2 evicts one, commit first
      expect(second).not.toBe(first);
      const state = { first: false, second: false, secondOk: false };
      void first.then(() => (state.first = true), () => (state.first = true));
      void second.then(
        () => ((state.second = true), (state.secondOk = true)),
        () => (state.second = true),
      );
      return { meta, log, state };
    }

    it('close returns only after the queued transaction ran (its writer got the activation)', async () => {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let commits = 0;
      const { meta, log, state } = await queuedBehindRunning(async () => {
        if (++commits === 1) await held; // transaction 2's commit
      });
      let closed = false;
      let secondAtClose = false;
      const closing = log.close().then(() => {
        closed = true;
        secondAtClose = state.second;
      });
      while (commits < 1) await new Promise((resolve) => setTimeout(resolve, 5));
      // Transaction 2 is in its commit: close must not be done (the old close was, with its own commit).
      await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 500))]);
      const closedWhileRunning = closed;
      release();
      await closing;
      expect(closedWhileRunning, 'close returned while transaction 2 ran').toBe(false);
      expect(secondAtClose, 'the queued activation settled before close returned').toBe(true);
      expect(state.first && state.secondOk).toBe(true);
      // Close's own commit and empty slot came last.
      expect(commits).toBe(2);
      expect((await ActivityLog.read(meta)).regions).toEqual([]);
    });

    it('abandon returns only once nothing runs: the queued transaction does not start after it (no commit after a crash)', async () => {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let commits = 0;
      const { meta, log, state } = await queuedBehindRunning(async () => {
        commits++;
        await held;
      });
      const sequence = () => ActivityLog.read(meta).then((contents) => contents.sequence);
      await log.abandon();
      const settledAtAbandon = { ...state };
      const commitsAtAbandon = commits;
      const sequenceAtAbandon = await sequence();
      release();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(settledAtAbandon.first, 'the slot write in progress completed').toBe(true);
      expect(settledAtAbandon.second, 'the queued activation settled before abandon returned').toBe(true);
      expect(settledAtAbandon.secondOk, 'and was refused').toBe(false);
      expect(commitsAtAbandon).toBe(0);
      expect(commits).toBe(0);
      expect(await sequence()).toBe(sequenceAtAbandon);
    });

    it('close called from inside a transaction (its commit) does not wait for that transaction', async () => {
      let inside: Promise<void> | null = null;
      const meta = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-activity-close-'));
      roots.push(meta);
      const log: ActivityLog = await ActivityLog.open(
        meta,
        await ActivityLog.read(meta),
        { regionTracks: 1, maxRegions: 3, idleMs: 0 },
        async () => {
          if (!inside && log.activeRegions > 3) {
            inside = log.close();
            await inside;
          }
        },
      );
      await log.cover(0, 0, 3);
      const evicting = log.cover(0, 3, 4)!; // commit first, which closes the log
      await expect(evicting).rejects.toThrow(/closed/);
      expect(inside).not.toBeNull();
      await inside;
      expect((await ActivityLog.read(meta)).regions).toEqual([]);
      await expect(log.cover(0, 0, 1)).rejects.toThrow(/closed/);
    }, 20_000);
  });

  it('reads its configuration from the environment, within limits', () => {
    expect(activityLogOptions(65536, {})).toEqual({ regionTracks: 64, maxRegions: 1024, idleMs: 5000 });
    expect(
      activityLogOptions(65536, { TANDEM_ACTIVITY_REGION_BYTES: '1048576', TANDEM_ACTIVITY_MAX_REGIONS: '1', TANDEM_ACTIVITY_IDLE_MS: '0' }),
    ).toEqual({ regionTracks: 16, maxRegions: 2, idleMs: 0 });
    expect(activityLogOptions(65536, { TANDEM_ACTIVITY_MAX_REGIONS: '1e9', TANDEM_ACTIVITY_REGION_BYTES: 'x' }).maxRegions).toBeLessThan(5000);
  });
});
