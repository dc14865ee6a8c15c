import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StorageEngine } from './engine.ts';
import { initDataDir } from './init.ts';
import { SegmentCodes } from './segment-codes.ts';

const TRACK = 65536;
let root = '';
afterEach(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

async function freshEngine(): Promise<StorageEngine> {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-codes-'));
  await initDataDir(root, { site: 'codes', trackSize: TRACK });
  return StorageEngine.open(root);
}

async function trackContent(engine: StorageEngine, name: string, track: number): Promise<Buffer> {
  const buffer = Buffer.alloc(TRACK);
  await engine.device(name).readInto(track * TRACK, buffer);
  return buffer;
}

describe('segment codes', () => {
  it('computes codes lazily, invalidates them on every kind of write, and recomputes only those', async () => {
    const engine = await freshEngine();
    await engine.createVolume('v', 32 * TRACK);
    const device = engine.device('v');
    await device.write(3 * TRACK + 5, Buffer.alloc(1000, 9));
    await device.write(7 * TRACK, Buffer.alloc(2 * TRACK, 4));
    const first = await engine.segmentCodes('v', 0, 32);
    expect(first.computed).toBe(32);
    for (let track = 0; track < 32; track++) {
      expect(first.codes[track]).toBe(SegmentCodes.hash(await trackContent(engine, 'v', track)));
    }
    expect(first.codes[0]).toBe(engine.codes.zeroCode);
    expect((await engine.segmentCodes('v', 0, 32)).computed).toBe(0);

    await device.write(3 * TRACK + 100, Buffer.from('changed')); // in place
    await device.trim(7 * TRACK, TRACK); // whole-track unmap
    await device.writeZeroes(8 * TRACK + 10, 20); // partial zeroing
    const second = await engine.segmentCodes('v', 0, 32);
    expect(second.computed).toBe(3);
    for (const track of [3, 7, 8]) {
      expect(second.codes[track]).toBe(SegmentCodes.hash(await trackContent(engine, 'v', track)));
      expect(second.codes[track]).not.toBe(first.codes[track]);
    }
    await engine.close();
  });

  it('never keeps a code valid for data a concurrent write changed', async () => {
    const engine = await freshEngine();
    await engine.createVolume('v', 64 * TRACK);
    const device = engine.device('v');
    await device.write(0, Buffer.alloc(64 * TRACK, 1));
    for (let round = 0; round < 20; round++) {
      const writes = [device.write((round % 64) * TRACK + 17, Buffer.alloc(3000, round + 2)), engine.segmentCodes('v', 0, 64)];
      await Promise.all(writes);
      const after = await engine.segmentCodes('v', round % 64, 1);
      expect(after.codes[0]).toBe(SegmentCodes.hash(await trackContent(engine, 'v', round % 64)));
    }
    await engine.close();
  });

  it('keeps codes across a clean restart and drops them all after a crash', async () => {
    let engine = await freshEngine();
    await engine.createVolume('v', 16 * TRACK);
    await engine.device('v').write(0, Buffer.alloc(16 * TRACK, 5));
    await engine.segmentCodes('v', 0, 16);
    await engine.createSnapshot('v', 's');
    await engine.close();
    engine = await StorageEngine.open(root);
    expect((await engine.segmentCodes('v', 0, 16)).computed).toBe(0);
    expect((await engine.segmentCodes('s', 0, 16)).computed).toBe(0);
    await engine.device('v').write(TRACK, Buffer.alloc(10, 6));
    await engine.abandonForCrashTest();
    engine = await StorageEngine.open(root);
    const recomputed = await engine.segmentCodes('v', 0, 16);
    expect(recomputed.computed).toBe(16);
    expect(recomputed.codes[1]).toBe(SegmentCodes.hash(await trackContent(engine, 'v', 1)));
    await engine.close();
  });
});
