import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serializeCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { MetadataJournal } from './journal.ts';
import { MetadataState } from './metadata.ts';
import { RecordType } from './wal.ts';

const TRACK = 4096;

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
});

async function freshDirs(): Promise<{ meta: string; pool: string }> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-journal-'));
  roots.push(root);
  const meta = path.join(root, 'meta');
  const pool = path.join(root, 'pool');
  await fs.mkdir(meta);
  await fs.mkdir(pool);
  await writeCheckpoint(meta, serializeCheckpoint(new MetadataState(TRACK), 1));
  return { meta, pool };
}

const createVolume = (volume: number) => ({ type: RecordType.CreateVolume as const, volume, sizeBytes: 16 * TRACK });

function settledState(promise: Promise<void>) {
  const state = { settled: false, ok: false, error: null as Error | null };
  void promise.then(
    () => ((state.settled = true), (state.ok = true)),
    (error: Error) => ((state.settled = true), (state.error = error)),
  );
  return state;
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('close and abandon of the metadata journal wait for every commit running or queued', () => {
  /**
   * The journal on its own, with its group commits held where they start (the
   * data sync of the real extent store, let through when the test says):
   * commit 1 carries volume 1's record and runs; volume 2's record is logged
   * behind it and commit 2 is queued.
   */
  async function queuedBehindRunning(onFirst?: (journal: MetadataJournal, first: Promise<void>) => void) {
    const { meta, pool } = await freshDirs();
    const journal = await MetadataJournal.open(meta, pool);
    const gates: Array<() => void> = [];
    let syncs = 0;
    const syncData = journal.extents.syncData.bind(journal.extents);
    journal.extents.syncData = async () => {
      syncs++;
      await new Promise<void>((resolve) => gates.push(resolve));
      await syncData();
    };
    journal.log(createVolume(1));
    const first = journal.commit();
    onFirst?.(journal, first);
    journal.log(createVolume(2));
    const second = journal.commit();
    expect(second).not.toBe(first);
    while (syncs < 1) await tick(5);
    return {
      meta,
      pool,
      journal,
      first: settledState(first),
      second: settledState(second),
      syncs: () => syncs,
      /** Lets every commit held so far go on. */
      release: () => gates.splice(0).forEach((go) => go()),
    };
  }

  it('abandon lets the running commit finish but the queued one never start: nothing after the crash reaches the WAL', async () => {
    const { meta, pool, journal, first, second, syncs, release } = await queuedBehindRunning();
    const abandoning = journal.abandon(3); // a torn 3 bytes of volume 2's record, as if the crash cut its write
    await tick(50);
    release();
    await abandoning;
    const atAbandon = { first: { ...first }, second: { ...second }, syncs: syncs() };
    release(); // a commit started after abandon (the old bug) would be held here: let it write
    await tick(100);
    expect(atAbandon.first.ok, 'the commit in progress completed').toBe(true);
    expect(atAbandon.second.settled, 'the queued commit settled before abandon returned').toBe(true);
    expect(atAbandon.second.error?.message).toMatch(/closed/);
    expect(atAbandon.syncs, 'the queued commit did not start').toBe(1);
    expect(syncs(), 'no commit started after abandon').toBe(1);
    // On disk: volume 1's commit, then the torn start of volume 2's record, nothing more.
    const reopened = await MetadataJournal.open(meta, pool);
    try {
      expect(reopened.recovery.replayedRecords).toBe(1);
      expect(reopened.recovery.tornBytes).toBe(3);
      expect([...reopened.state.volumes.keys()]).toEqual([1]);
    } finally {
      await reopened.close();
    }
  });

  it('close returns only after a commit requested while its own ran has completed, and refuses records meanwhile', async () => {
    const { meta, pool, journal, first, second, syncs, release } = await queuedBehindRunning();
    let closed = false;
    const closing = journal.close().then(() => (closed = true));
    let closedAgain = false;
    const closingAgain = journal.close().then(() => (closedAgain = true));
    expect(() => journal.log(createVolume(3)), 'no record once close began').toThrow(/closed/);
    release(); // commit 1 goes on; close's checkpoint commit (shared with commit 2) starts and is held
    while (syncs() < 2) await tick(5);
    const third = settledState(journal.commit()); // queued behind close's commit
    release(); // close's commit goes on; the third starts and is held
    while (syncs() < 3 && !closed) await tick(5);
    await Promise.race([closing, tick(300)]);
    const closedWhileRunning = closed || closedAgain;
    release();
    await closing;
    await closingAgain;
    const thirdAtClose = { ...third };
    await tick(100);
    expect(closedWhileRunning, 'close (or a second close) returned while a commit ran').toBe(false);
    expect(thirdAtClose.settled, 'the commit requested during close settled before close returned').toBe(true);
    expect(first.ok && second.ok && third.ok).toBe(true);
    expect(syncs()).toBe(3);
    await expect(journal.commit(), 'no commit after close').rejects.toThrow(/closed/);
    const reopened = await MetadataJournal.open(meta, pool);
    try {
      expect([...reopened.state.volumes.keys()].sort()).toEqual([1, 2]);
    } finally {
      await reopened.close();
    }
  });

  it('abandon called as a commit settles, with another queued, neither waits for itself nor lets the queued one start', async () => {
    let abandoning: Promise<void> | null = null;
    // Called from the continuation of commit 1, before commit 2 would start.
    const { second, syncs, release } = await queuedBehindRunning((journal, first) => {
      void first.then(() => {
        abandoning = journal.abandon();
      });
    });
    release();
    while (!abandoning) await tick(5);
    await Promise.race([abandoning, tick(10_000).then(() => Promise.reject(new Error('abandon deadlocked')))]);
    await tick(50);
    expect(second.error?.message).toMatch(/closed/);
    expect(syncs()).toBe(1);
  }, 20_000);
});
