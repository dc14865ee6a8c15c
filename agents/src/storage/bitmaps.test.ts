import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkDataDir } from './check.ts';
import { StorageEngine } from './engine.ts';
import { initDataDir } from './init.ts';

let root = '';
afterEach(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

async function freshEngine(): Promise<StorageEngine> {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-bitmaps-'));
  await initDataDir(root, { site: 'bitmaps', trackSize: 65536 });
  return StorageEngine.open(root);
}

describe('persistent track bitmaps', () => {
  it('keeps every durably set bit across a crash and a clean restart', async () => {
    let engine = await freshEngine();
    await engine.createVolume('v', 64 * 65536);
    const id = await engine.bitmaps.create(engine.volumeId('v'), 'clear');
    await engine.bitmaps.set(id, 3, 2);
    await engine.bitmaps.set(id, 40, 1);
    engine.bitmaps.clear(id, 4, 1); // lazy: may or may not survive a crash
    await engine.abandonForCrashTest();
    expect((await checkDataDir(root)).problems).toEqual([]);
    engine = await StorageEngine.open(root);
    const view = engine.bitmaps.view(id);
    expect(view.isSet(3)).toBe(true);
    expect(view.isSet(40)).toBe(true);
    expect(view.isSet(5)).toBe(false);
    engine.bitmaps.clear(id, 0, 64);
    await engine.close();
    engine = await StorageEngine.open(root);
    expect(engine.bitmaps.view(id).setCount).toBe(0);
    await engine.close();
  });

  it('starts an initial-copy bitmap on exactly the allocated tracks', async () => {
    const engine = await freshEngine();
    await engine.createVolume('v', 10000 * 65536);
    const device = engine.device('v');
    for (const track of [0, 1, 2, 4095, 4096, 9999]) await device.write(track * 65536 + 10, Buffer.from('x'));
    const id = await engine.bitmaps.create(engine.volumeId('v'), 'allocated');
    const view = engine.bitmaps.view(id);
    const set: number[] = [];
    for (let t = view.nextSet(0); t >= 0; t = view.nextSet(t + 1)) set.push(t);
    expect(set).toEqual([0, 1, 2, 4095, 4096, 9999]);
    await engine.close();
  });

  it('merges bitmaps, grows them with the volume and drops them with it', async () => {
    let engine = await freshEngine();
    await engine.createVolume('v', 16 * 65536);
    const a = await engine.bitmaps.create(engine.volumeId('v'), 'clear');
    const b = await engine.bitmaps.create(engine.volumeId('v'), 'all');
    await engine.bitmaps.set(a, 1, 1);
    engine.bitmaps.clear(b, 0, 8);
    await engine.bitmaps.merge(a, b);
    expect(engine.bitmaps.view(a).setCount).toBe(9);
    await engine.resizeVolume('v', 32 * 65536);
    expect(engine.bitmaps.view(a).trackCount).toBe(32);
    await engine.bitmaps.set(a, 31, 1);
    await engine.close();
    engine = await StorageEngine.open(root);
    expect(engine.bitmaps.view(a).setCount).toBe(10);
    await engine.deleteVolume('v');
    expect(() => engine.bitmaps.view(a)).toThrow(/no track bitmap/);
    await engine.close();
    expect((await checkDataDir(root)).problems).toEqual([]);
  });
});
