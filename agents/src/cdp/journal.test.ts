import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkDataDir } from '../storage/check.ts';
import { StorageEngine } from '../storage/engine.ts';
import { ExtentStore } from '../storage/extent-store.ts';
import { initDataDir } from '../storage/init.ts';
import { NO_EXTENT } from '../storage/metadata.ts';
import { pattern } from '../storage/reference-model.ts';
import { ImageDevice } from './image.ts';
import { CdpJournal, TRIM_PIECE_TRACKS } from './journal.ts';

/** Focused tests of the CDP journal on a real engine in a temp dir (see journal.property.test.ts for the model test). */

const TRACK = 4096;
const opened: StorageEngine[] = [];
const roots: string[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const engine of opened.splice(0)) await engine.close().catch(() => {});
  for (const root of roots.splice(0)) await fs.rm(root, { recursive: true, force: true });
});

async function setup(sizeBytes: number, trackSize = TRACK): Promise<{ root: string; engine: StorageEngine; journal: CdpJournal; volume: number }> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'tandem-cdp-unit-'));
  roots.push(root);
  await initDataDir(root, { site: 'cdp', trackSize });
  const engine = await StorageEngine.open(root);
  opened.push(engine);
  await engine.createVolume('replica', sizeBytes);
  const journal = await CdpJournal.create(engine, ['replica']);
  return { root, engine, journal, volume: engine.volumeId('replica') };
}

async function readImage(journal: CdpJournal, seq: number, volume: number, offset: number, length: number): Promise<Buffer> {
  const image = journal.openImage(seq);
  try {
    const out = Buffer.alloc(length);
    await image.read(volume, offset, out);
    return out;
  } finally {
    await image.close();
  }
}

/** Counts pwrites and preads of the real extent store (passed through, not replaced). */
function countDataIo(): { writes: () => number; reads: () => number } {
  const write = vi.spyOn(ExtentStore.prototype, 'write');
  const read = vi.spyOn(ExtentStore.prototype, 'read');
  return { writes: () => write.mock.calls.length, reads: () => read.mock.calls.length };
}

describe('data I/O per replicated write', () => {
  it('is one pwrite for whole tracks, a read and a write for a partial track, and none to distribute', async () => {
    const { engine, journal, volume } = await setup(64 * TRACK);
    await journal.write(volume, 0, pattern(1, 8 * TRACK, 1));
    await journal.distribute({ durable: true });
    await journal.markPoint();
    const io = countDataIo();

    // A whole-track replicated write: the do write is the only data I/O.
    await journal.write(volume, 2 * TRACK, pattern(2, TRACK, 2));
    expect([io.writes(), io.reads()]).toEqual([1, 0]);
    // Four whole tracks in one write: still one pwrite (consecutive extents).
    await journal.write(volume, 16 * TRACK, pattern(3, 4 * TRACK, 3));
    expect([io.writes(), io.reads()]).toEqual([2, 0]);
    // 100 bytes into an allocated track: its current content is read once, the whole track written once.
    await journal.write(volume, 5 * TRACK + 100, pattern(4, 100, 4));
    expect([io.writes(), io.reads()]).toEqual([3, 1]);
    // A partial write into a track that was never written reads nothing.
    await journal.write(volume, 40 * TRACK + 7, pattern(5, 10, 5));
    expect([io.writes(), io.reads()]).toEqual([4, 1]);
    // A 4 KiB write across a track boundary, over two tracks held in consecutive extents: one pread of both, one pwrite.
    await journal.write(volume, 6 * TRACK + 200, pattern(6, TRACK, 6));
    expect([io.writes(), io.reads()]).toEqual([5, 2]);

    // Distribution moves pointers: the replica's old extent becomes the undo, by number.
    const meta = engine.metadata.volume(volume);
    const before = engine.metadata.lookup(meta, 2);
    const doExtent = journal.meta.pending.find((entry) => entry.track === 2)!.extent;
    const moved = await journal.distribute({ durable: true });
    expect(moved).toBe(1 + 4 + 1 + 1 + 2);
    expect([io.writes(), io.reads()]).toEqual([5, 2]);
    expect(engine.metadata.lookup(meta, 2)).toBe(doExtent);
    expect(journal.meta.kept.findLast((entry) => entry.track === 2)!.undo).toBe(before);
    expect(journal.io).toMatchObject({ appends: 6, dataWrites: 6, dataReads: 2 });

    // The replica holds the new data; the point before shows the old.
    const replica = Buffer.alloc(TRACK);
    await engine.device('replica').readInto(2 * TRACK, replica);
    expect(replica.equals(pattern(2, TRACK, 2))).toBe(true);
    const old = await readImage(journal, journal.points()[0].seq, volume, 2 * TRACK, TRACK);
    expect(old.equals(pattern(1, 8 * TRACK, 1).subarray(2 * TRACK, 3 * TRACK))).toBe(true);
  });
});

describe('instant image access', () => {
  it('opens in well under a second at any depth, and reads the old content there', async () => {
    const { journal, volume } = await setup(256 * TRACK);
    // TANDEM_CDP_IMAGE_DEPTHS=10,1000,100000 measures deeper.
    const depths = (process.env.TANDEM_CDP_IMAGE_DEPTHS ?? '10,1000,10000').split(',').map(Number);
    const timings: string[] = [];
    // The point every image opens at: all 256 tracks written once.
    const base = pattern(1, 256 * TRACK, 8);
    await journal.write(volume, 0, base);
    const point = await journal.markPoint({ name: 'base' });
    let written = 0;
    for (const depth of depths) {
      // `depth` whole-track overwrites since the point in all (each track overwritten depth / 256 times), distributed.
      const batch: Promise<number>[] = [];
      for (; written < depth; written++) {
        batch.push(journal.write(volume, (written % 256) * TRACK, pattern(written, TRACK, 9)));
        if (batch.length === 500) await Promise.all(batch.splice(0));
      }
      await Promise.all(batch);
      await journal.markPoint();
      await journal.distribute();
      // The median of 21 opens (a single one may meet a GC pause on a busy machine).
      const opens: number[] = [];
      for (let i = 0; i < 21; i++) {
        const started = performance.now();
        const probe = journal.openImage(point.seq);
        opens.push(performance.now() - started);
        await probe.close();
      }
      opens.sort((a, b) => a - b);
      const openMs = opens[10];
      const image = journal.openImage(point.seq);
      const out = Buffer.alloc(256 * TRACK);
      const readStarted = performance.now();
      await image.read(volume, 0, out);
      const readMs = performance.now() - readStarted;
      await image.close();
      expect(out.equals(base), 'the image reads the volume as it was at the point').toBe(true);
      expect(openMs).toBeLessThan(5);
      expect(opens[20]).toBeLessThan(1000);
      timings.push(`${depth} records back: open ${openMs.toFixed(3)} ms (median of 21; slowest ${opens[20].toFixed(3)} ms), whole 1 MiB image read ${readMs.toFixed(3)} ms`);
    }
    console.log(`image access at the point before every overwrite:\n  ${timings.join('\n  ')}`);
  });
});

describe('trim', () => {
  it('is journaled as records (split into pieces), releases the replica tracks, and images before it still show the data (unpunch)', async () => {
    const tracks = 2 * TRIM_PIECE_TRACKS + 100;
    const { engine, journal, volume } = await setup(tracks * TRACK);
    const data = pattern(11, 300 * TRACK, 11);
    await journal.write(volume, 0, data);
    await journal.write(volume, (tracks - 50) * TRACK, pattern(12, 50 * TRACK, 12));
    await journal.distribute();
    const before = await journal.markPoint({ name: 'before-trim' });
    const io = countDataIo();
    const seqBefore = journal.meta.lastSeq;
    // The whole volume but 100 bytes at each end: two partial tracks (written as zeroes over their content) and whole-track trim records.
    await journal.trim(volume, 100, tracks * TRACK - 200);
    const records = journal.meta.lastSeq - seqBefore;
    expect(records).toBe(2 + Math.ceil((tracks - 2) / TRIM_PIECE_TRACKS));
    // Only the two partial tracks cost data I/O (a read and a write each): no zeroes are written for whole tracks.
    expect([io.writes(), io.reads()]).toEqual([2, 2]);
    await journal.distribute({ durable: true });
    const meta = engine.metadata.volume(volume);
    expect(engine.metadata.lookup(meta, 1)).toBe(NO_EXTENT);
    expect(engine.device('replica').allocationMap(TRACK, (tracks - 2) * TRACK)).toEqual([{ length: (tracks - 2) * TRACK, allocated: false }]);
    // The 348 whole tracks the trim freed in the replica and the two partial tracks' old content are held as undo.
    expect(journal.meta.heldExtents).toBe(350);
    const old = await readImage(journal, before.seq, volume, 0, 300 * TRACK);
    expect(old.equals(data)).toBe(true);
    const now = await readImage(journal, journal.meta.lastSeq, volume, 0, 300 * TRACK);
    expect(now.subarray(0, 100).equals(data.subarray(0, 100))).toBe(true);
    expect(now.subarray(100).every((byte) => byte === 0)).toBe(true);
  });
});

describe('images keep their writes apart', () => {
  it('writes land in extents of the image alone, given back at close and after a crash', async () => {
    const { root, engine, journal, volume } = await setup(32 * TRACK);
    await journal.write(volume, 0, pattern(1, 4 * TRACK, 1));
    const point = await journal.markPoint();
    await journal.write(volume, 0, pattern(2, 4 * TRACK, 2));
    await journal.distribute({ durable: true });
    const used = engine.metadata.usedExtents;
    const image = journal.openImage(point.seq);
    await image.write(volume, 10, Buffer.from('kept apart'));
    const out = Buffer.alloc(20);
    await image.read(volume, 0, out);
    expect(out.subarray(10, 20).toString()).toBe('kept apart');
    expect(out.subarray(0, 10).equals(pattern(1, 4 * TRACK, 1).subarray(0, 10))).toBe(true);
    // Nothing references the image's extent: the pool's used extents did not change.
    expect(engine.metadata.usedExtents).toBe(used);
    const freeBefore = engine.metadataJournal.allocator.freeExtents;
    await image.close();
    expect(engine.metadataJournal.allocator.freeExtents).toBe(freeBefore + 1);
    const replica = Buffer.alloc(4 * TRACK);
    await engine.device('replica').readInto(0, replica);
    expect(replica.equals(pattern(2, 4 * TRACK, 2))).toBe(true);

    // A crash with an image open: nothing of it survives, the pool checks clean.
    const again = journal.openImage(point.seq);
    await again.write(volume, 0, pattern(3, 2 * TRACK, 3));
    opened.splice(opened.indexOf(engine), 1);
    await engine.abandonForCrashTest();
    expect((await checkDataDir(root)).problems).toEqual([]);
    const reopened = await StorageEngine.open(root);
    opened.push(reopened);
    const recovered = CdpJournal.open(reopened, journal.id);
    const image2 = await readImage(recovered, point.seq, volume, 0, 4 * TRACK);
    expect(image2.equals(pattern(1, 4 * TRACK, 1))).toBe(true);
  });
});

describe('appends not waited durable (durable: false, a replicated write without FUA)', () => {
  it('resolve once logged, in order; a flush makes them durable, a crash before loses only what no flush covered', async () => {
    const { root, engine, journal, volume } = await setup(16 * TRACK);
    const first = await journal.write(volume, 0, pattern(1, TRACK, 1), Date.now(), { durable: false });
    expect(engine.pendingMetadataBytes).toBeGreaterThan(0);
    await journal.flush();
    expect(engine.pendingMetadataBytes).toBe(0);
    const second = await journal.write(volume, TRACK, pattern(2, TRACK, 2), Date.now(), { durable: false });
    await journal.trim(volume, 0, TRACK, Date.now(), { durable: false });
    expect(second).toBe(first + 1);
    expect(journal.meta.lastSeq).toBe(first + 2);
    expect(engine.pendingMetadataBytes).toBeGreaterThan(0);
    opened.splice(opened.indexOf(engine), 1);
    await engine.abandonForCrashTest();
    expect((await checkDataDir(root)).problems).toEqual([]);
    const reopened = await StorageEngine.open(root);
    opened.push(reopened);
    const recovered = CdpJournal.open(reopened, journal.id);
    // The flushed write is there; the two after it, never flushed, are not (and their extents are free again).
    expect(recovered.meta.lastSeq).toBe(first);
    expect((await readImage(recovered, first, volume, 0, 2 * TRACK)).equals(Buffer.concat([pattern(1, TRACK, 1), Buffer.alloc(TRACK)]))).toBe(true);
  });
});

describe('crash mid-distribution', () => {
  it('loses no acknowledged record or point, whatever part of the distribution records reached the WAL', async () => {
    for (const keepBytes of [0, 20, 45, 1 << 20]) {
      const { root, engine, journal, volume } = await setup(64 * TRACK);
      const expected: Buffer[] = [];
      const content = Buffer.alloc(64 * TRACK);
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < 5; i++) {
          const offset = ((round * 7 + i * 13) % 60) * TRACK + i * 33;
          const data = pattern(round * 10 + i, 2 * TRACK, 3);
          await journal.write(volume, offset, data);
          data.copy(content, offset);
        }
        await journal.markPoint({ name: round % 2 === 0 ? `round-${round}` : undefined });
        expect(journal.points().length).toBe(round + 1);
        expected.push(Buffer.from(content));
      }
      // Three distribution steps and a release, none committed: a crash tears them.
      await journal.distribute({ maxEntries: 4 });
      await journal.distribute({ maxEntries: 9 });
      await journal.release(journal.points()[1].seq);
      await journal.distribute({ maxEntries: 6 });
      opened.splice(opened.indexOf(engine), 1);
      await engine.abandonForCrashTest(keepBytes);
      expect((await checkDataDir(root)).problems).toEqual([]);
      const reopened = await StorageEngine.open(root);
      opened.push(reopened);
      const recovered = CdpJournal.open(reopened, journal.id);
      const points = recovered.points();
      // The release may or may not have survived; every other point did.
      expect(points.length === 6 || points.length === 5, `${points.length} points after keeping ${keepBytes} bytes`).toBe(true);
      for (const point of points) {
        const round = expected.length - (points.length - points.indexOf(point));
        const image = await readImage(recovered, point.seq, volume, 0, 64 * TRACK);
        expect(image.equals(expected[round]), `point of round ${round} after keeping ${keepBytes} bytes`).toBe(true);
      }
      // Distribution goes on after recovery and the replica ends up at the last point.
      await recovered.distribute({ durable: true });
      const replica = Buffer.alloc(64 * TRACK);
      await reopened.device('replica').readInto(0, replica);
      expect(replica.equals(content)).toBe(true);
    }
  });
});

describe('deleting a journal', () => {
  it('distributes what is left, then frees every extent it held', async () => {
    const { root, engine, journal, volume } = await setup(32 * TRACK);
    await journal.write(volume, 0, pattern(1, 8 * TRACK, 1));
    await journal.markPoint();
    await journal.write(volume, 0, pattern(2, 4 * TRACK, 2));
    await journal.distribute();
    await journal.write(volume, 0, pattern(3, 2 * TRACK, 3));
    // Held: 4 undo extents of the second write, 2 do extents of the third.
    expect(journal.meta.heldExtents).toBe(6);
    await journal.delete();
    expect(CdpJournal.list(engine)).toEqual([]);
    expect(engine.metadata.usedExtents).toBe(8);
    const replica = Buffer.alloc(8 * TRACK);
    await engine.device('replica').readInto(0, replica);
    const expected = pattern(1, 8 * TRACK, 1);
    pattern(2, 4 * TRACK, 2).copy(expected, 0);
    pattern(3, 2 * TRACK, 3).copy(expected, 0);
    expect(replica.equals(expected)).toBe(true);
    await engine.close();
    opened.splice(opened.indexOf(engine), 1);
    expect((await checkDataDir(root)).problems).toEqual([]);
    const reopened = await StorageEngine.open(root);
    opened.push(reopened);
    expect(CdpJournal.list(reopened)).toEqual([]);
    expect(reopened.metadata.usedExtents).toBe(8);
  });
});

describe('an image as a block device', () => {
  it('reads the point, maps what is allocated there, and takes writes and trims apart from the replica', async () => {
    const { engine, journal, volume } = await setup(16 * TRACK);
    await journal.write(volume, 0, pattern(1, 2 * TRACK, 1));
    const point = await journal.markPoint();
    await journal.write(volume, 4 * TRACK, pattern(2, 2 * TRACK, 2));
    await journal.trim(volume, 0, TRACK);
    await journal.distribute();
    const image = journal.openImage(point.seq);
    const device = new ImageDevice(image, volume, 'replica@point');
    expect(device.sizeBytes).toBe(16 * TRACK);
    expect(device.allocationMap(0, 8 * TRACK)).toEqual([
      { length: 2 * TRACK, allocated: true },
      { length: 6 * TRACK, allocated: false },
    ]);
    const out = Buffer.alloc(2 * TRACK);
    await device.readInto(0, out);
    expect(out.equals(pattern(1, 2 * TRACK, 1))).toBe(true);
    await device.trim(100, 200);
    await device.write(TRACK, Buffer.from('image only'));
    await device.readInto(0, out);
    const expected = pattern(1, 2 * TRACK, 1);
    expected.fill(0, 100, 300);
    Buffer.from('image only').copy(expected, TRACK);
    expect(out.equals(expected)).toBe(true);
    await image.close();
    // The replica saw none of it: track 0 trimmed by the journal, track 1 as written.
    const replica = Buffer.alloc(2 * TRACK);
    await engine.device('replica').readInto(0, replica);
    expect(replica.subarray(0, TRACK).every((b) => b === 0)).toBe(true);
    expect(replica.subarray(TRACK).equals(pattern(1, 2 * TRACK, 1).subarray(TRACK))).toBe(true);
  });
});
