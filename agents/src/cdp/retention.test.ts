import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CdpPoint } from '../storage/cdp-meta.ts';
import { checkDataDir } from '../storage/check.ts';
import { StorageEngine } from '../storage/engine.ts';
import { initDataDir } from '../storage/init.ts';
import { pattern } from '../storage/reference-model.ts';
import { CdpJournal } from './journal.ts';
import { applyRetention, coalescePoints, DEFAULT_TIERS, journalStatus, pointsToKeep, type RetentionPolicy } from './retention.ts';

const TRACK = 4096;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const opened: StorageEngine[] = [];
const roots: string[] = [];

afterEach(async () => {
  for (const engine of opened.splice(0)) await engine.close().catch(() => {});
  for (const root of roots.splice(0)) await fs.rm(root, { recursive: true, force: true });
});

async function setup(): Promise<{ root: string; engine: StorageEngine; journal: CdpJournal; volume: number }> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-cdp-retention-'));
  roots.push(root);
  await initDataDir(root, { site: 'cdp', trackSize: TRACK });
  const engine = await StorageEngine.open(root);
  opened.push(engine);
  await engine.createVolume('replica', 64 * TRACK);
  const journal = await CdpJournal.create(engine, ['replica']);
  return { root, engine, journal, volume: engine.volumeId('replica') };
}

/** One write to track 0 and a point every `stepMs` from `startMs`, `count` times (fired together: they run in call order). */
async function history(journal: CdpJournal, volume: number, startMs: number, stepMs: number, count: number, bookmarkAt = -1): Promise<void> {
  const work: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const timeMs = startMs + i * stepMs;
    work.push(journal.write(volume, 0, pattern(i, TRACK, 5), timeMs));
    work.push(journal.markPoint({ timeMs, name: i === bookmarkAt ? 'before-upgrade' : undefined }));
  }
  await Promise.all(work);
  await journal.distribute({ durable: true });
}

async function trackZeroAt(journal: CdpJournal, volume: number, seq: number): Promise<Buffer> {
  const image = journal.openImage(seq);
  const out = Buffer.alloc(TRACK);
  await image.read(volume, 0, out);
  await image.close();
  return out;
}

describe('which points a policy keeps', () => {
  it('keeps every point of the last hour, one a minute for a day, one an hour for a week, and bookmarks as told', () => {
    const now = 10 * DAY;
    const at = (ageMs: number, name: string | null = null): CdpPoint => ({ seq: now - ageMs, timeMs: now - ageMs, name });
    // Oldest first, as the journal lists them.
    const points = [
      at(9 * DAY),
      at(8 * DAY, 'old-bookmark'),
      at(3 * DAY + 20 * MINUTE),
      at(3 * DAY + 10 * MINUTE),
      at(2 * HOUR + 40_000),
      at(2 * HOUR + 30_000),
      at(2 * HOUR + 10_000),
      at(30 * MINUTE),
      at(29 * MINUTE),
    ];
    const policy: RetentionPolicy = { requiredWindowMs: DAY, budgetBytes: 1 << 30, tiers: DEFAULT_TIERS, bookmarkMs: 30 * DAY };
    const kept = [...pointsToKeep(points, policy, now)].map((p) => (now - p.timeMs) / 1000);
    // Ages in seconds: the bookmark, the last of its hour, the last of its minute, the last hour's two.
    expect(kept.sort((a, b) => b - a)).toEqual([8 * 86400, 3 * 86400 + 10 * 60, 7210, 1800, 1740]);
    // A shorter bookmark time lets the old bookmark go with its tier.
    expect([...pointsToKeep(points, { ...policy, bookmarkMs: DAY }, now)].some((p) => p.name !== null)).toBe(false);
  });

  it('lists plain points coalesced per second, bookmarks each', () => {
    const points: CdpPoint[] = [
      { seq: 1, timeMs: 1000, name: null },
      { seq: 2, timeMs: 1400, name: null },
      { seq: 3, timeMs: 1900, name: null },
      { seq: 4, timeMs: 1950, name: 'b' },
      { seq: 5, timeMs: 2100, name: null },
      { seq: 6, timeMs: 2200, name: null },
    ];
    expect(coalescePoints(points, 1000).map((p) => p.seq)).toEqual([3, 4, 6]);
  });
});

describe('retention on a journal', () => {
  it('consolidates old points, frees the undo only they needed, keeps bookmarks, and the kept points read right', async () => {
    const { root, engine, journal, volume } = await setup();
    // Three hours of a point every 30 s, each after an overwrite of track 0: 360 points, 359 undo extents.
    const start = 100 * DAY;
    await history(journal, volume, start, 30_000, 360, 10);
    const now = start + 360 * 30_000;
    expect(journal.points().length).toBe(360);
    const heldBefore = journal.meta.heldExtents;
    const usedBefore = engine.metadata.usedExtents;
    const policy: RetentionPolicy = { requiredWindowMs: 2 * HOUR, budgetBytes: 1 << 30, tiers: [{ ageMs: HOUR, everyMs: 0 }, { ageMs: 2.5 * HOUR, everyMs: 5 * MINUTE }], bookmarkMs: DAY };
    const result = await applyRetention(journal, policy, now);
    await journal.flush();
    const points = journal.points();
    // The last hour whole (120 points, and one at exactly an hour), then one per 5 minutes back to 2.5 h, plus the bookmark from 2 h 55 min ago.
    const recent = points.filter((p) => now - p.timeMs <= HOUR);
    expect(recent.length).toBe(120);
    expect(points.some((p) => p.name === 'before-upgrade')).toBe(true);
    expect(points.length).toBeLessThan(160);
    expect(result.droppedPoints).toBe(360 - points.length);
    expect(result.heldAfter).toBeLessThan(heldBefore);
    expect(engine.metadata.usedExtents).toBe(usedBefore - (heldBefore - result.heldAfter));
    // Every point kept still reads the write it followed.
    // (Write i is record i + 1, and the point after it holds that record.)
    for (const point of points) {
      expect((await trackZeroAt(journal, volume, point.seq)).equals(pattern(point.seq - 1, TRACK, 5)), `point ${point.seq}`).toBe(true);
    }
    await engine.close();
    opened.splice(opened.indexOf(engine), 1);
    expect((await checkDataDir(root)).problems).toEqual([]);
  });

  it('drops the oldest points when over budget (even bookmarks), never the point of an open image, and says so in its status', async () => {
    const { journal, volume } = await setup();
    const start = 50 * DAY;
    await history(journal, volume, start, MINUTE, 100, 0);
    const now = start + 100 * MINUTE;
    const policy: RetentionPolicy = { requiredWindowMs: 2 * HOUR, budgetBytes: 40 * TRACK, tiers: DEFAULT_TIERS, bookmarkMs: Infinity };

    const before = journalStatus(journal, policy, now);
    // The first write overwrote nothing: 99 undo extents.
    expect(before.usedBytes).toBe(99 * TRACK);
    expect(before.warnings.map((w) => w.code)).toContain('nearly-full');

    const image = journal.openImage(journal.points()[30].seq);
    await applyRetention(journal, policy, now);
    // The open image stops retention at its point.
    expect(journal.points()[0].seq).toBe(image.seq);
    await image.close();
    const result = await applyRetention(journal, policy, now);
    expect(result.droppedForSpace).toBeGreaterThan(0);
    expect(journal.meta.heldExtents * TRACK).toBeLessThanOrEqual(40 * TRACK);
    expect(journal.points().some((p) => p.name !== null)).toBe(false);

    // About 39 minutes covered against 2 h required: under 75 %, severe.
    const after = journalStatus(journal, policy, now);
    expect(after.oldestPoint!.seq).toBe(journal.points()[0].seq);
    expect(after.predictedWindowMs).toBe(after.coveredWindowMs);
    expect(after.warnings).toContainEqual(expect.objectContaining({ code: 'window-short', percent: 75, level: 'severe' }));
  });

  it('warns at 85 % and at 75 % of the required window, from the rate so far when nothing was dropped', async () => {
    const { journal, volume } = await setup();
    const start = 10 * DAY;
    await history(journal, volume, start, MINUTE, 10);
    const now = start + 10 * MINUTE;
    // 10 minutes covered with 10 tracks used: a 100-track budget holds about 100 minutes.
    const covered = now - journal.points()[0].timeMs;
    const status = (requiredMs: number) => journalStatus(journal, { requiredWindowMs: requiredMs, budgetBytes: 100 * TRACK, tiers: DEFAULT_TIERS, bookmarkMs: Infinity }, now);
    const predicted = status(HOUR).predictedWindowMs;
    expect(predicted).toBeCloseTo((covered * 100) / journal.meta.heldExtents);
    expect(status(predicted).warnings).toEqual([]);
    expect(status(predicted / 0.8).warnings.map((w) => [w.code, w.level])).toEqual([['window-short', 'warning']]);
    expect(status(predicted / 0.7).warnings.map((w) => [w.code, w.level])).toEqual([['window-short', 'severe']]);
  });
});
