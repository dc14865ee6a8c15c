import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StorageEngine } from './engine.ts';
import { initDataDir } from './init.ts';

let root = '';
afterEach(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

/**
 * Volume ids are never reused, also across restarts and crashes: copy sets
 * hold their volumes by id, so a volume made again under a deleted one's
 * name must never get the deleted one's id (it would be taken for it).
 */
describe('volume ids', () => {
  it('a volume or snapshot made after the newest one was deleted gets a new id, after a clean restart and after a crash', async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-volume-ids-'));
    await initDataDir(root, { site: 'ids', trackSize: 65536 });
    let engine = await StorageEngine.open(root);
    await engine.createVolume('a', 16 * 65536);
    const b = await engine.createVolume('b', 16 * 65536);
    await engine.deleteVolume('b');
    await engine.close();

    engine = await StorageEngine.open(root);
    const again = await engine.createVolume('b', 16 * 65536);
    expect(again.id, 'after a clean restart').toBeGreaterThan(b.id);
    const snapshot = await engine.createSnapshot('a', 'a-1');
    expect(snapshot.id).toBeGreaterThan(again.id);
    await engine.deleteVolume('a-1');
    await engine.deleteVolume('b');
    await engine.abandonForCrashTest();

    engine = await StorageEngine.open(root);
    const third = await engine.createVolume('b', 16 * 65536);
    expect(third.id, 'after a crash').toBeGreaterThan(snapshot.id);
    await engine.close();
  });
});
