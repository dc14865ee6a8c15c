import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageEngine } from '../storage/engine.ts';
import { initDataDir } from '../storage/init.ts';
import type { HostChange } from './splitter.ts';
import { TargetChangedTap } from './target-taps.ts';

const TRACK = 4096;
const REGION_TRACKS = 4;
const VOLUME_TRACKS = 64;

// The engine opens its activity log with these (read at each open).
const savedEnv = { ...process.env };
process.env.TANDEM_ACTIVITY_REGION_BYTES = String(REGION_TRACKS * TRACK);
process.env.TANDEM_ACTIVITY_IDLE_MS = '0';

const roots: string[] = [];
afterAll(async () => {
  for (const name of ['TANDEM_ACTIVITY_REGION_BYTES', 'TANDEM_ACTIVITY_IDLE_MS']) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
  for (const root of roots) await fs.rm(root, { recursive: true, force: true });
});

function write(track: number, count: number): HostChange {
  return { kind: 'write', offset: track * TRACK, data: Buffer.alloc(count * TRACK, 7) };
}

describe('target-changed bitmap of a recovered target', () => {
  it('marks first writes through the activity log (no metadata commit waited for) and keeps them across a crash', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-target-changed-'));
    roots.push(root);
    await initDataDir(root, { site: 'target-changed', trackSize: TRACK });
    const engine = await StorageEngine.open(root);
    try {
      await engine.createVolume('v', VOLUME_TRACKS * TRACK);
      const bitmap = await engine.bitmaps.create(engine.volumeId('v'), 'clear');
      const tap = new TargetChangedTap(engine, bitmap);
      const log = engine.bitmaps.activity!;
      const start = log.transactions;
      const pendingBefore = engine.pendingMetadataBytes;

      // First writes to tracks 1-2 (region 0) and 9 (region 2): one activation each, no commit.
      await tap.beforeWrite(write(1, 2), { first: 1, end: 3 }).beforeLocal;
      await tap.beforeWrite(write(9, 1), { first: 9, end: 10 }).beforeLocal;
      expect(log.regionsOf(bitmap)).toEqual([0, 2]);
      expect(log.transactions - start).toBe(2);
      expect(engine.pendingMetadataBytes, 'the bits wait for the next commit').toBeGreaterThan(pendingBefore);
      // A first write into an active region costs no slot write.
      await tap.beforeWrite(write(3, 1), { first: 3, end: 4 }).beforeLocal;
      expect(log.transactions - start).toBe(2);
      const view = engine.bitmaps.view(bitmap);
      expect([1, 2, 3, 9].every((track) => view.isSet(track))).toBe(true);
      expect(view.setCount).toBe(4);

      // kill -9 before any metadata commit: the regions in the log mark all their tracks at open.
      await engine.abandonForCrashTest();
      const reopened = await StorageEngine.open(root);
      const after = reopened.bitmaps.view(bitmap);
      for (const track of [0, 1, 2, 3, 8, 9, 10, 11]) expect(after.isSet(track), `track ${track}`).toBe(true);
      expect(after.setCount).toBe(2 * REGION_TRACKS);
      await reopened.close();
    } finally {
      await engine.close().catch(() => {});
    }
  });
});
